// Dual-stack sockets (issue 12): AF_INET6 stream sockets carry IPv4 on the stack, with the
// addresses Linux shows (::ffff:a.b.c.d), IPV6_V6ONLY honoured (a v6-only listener refuses
// IPv4), and the IPPROTO_IPV6 options answered as the kernel answers them. Each case runs
// against the kernel too.
#include "lib.h"

/// ::ffff:ip, port.
static struct sockaddr_in6 mapped(const char *ip, int port) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)port);
    a.sin6_addr.s6_addr[10] = 0xff;
    a.sin6_addr.s6_addr[11] = 0xff;
    CHECK(inet_pton(AF_INET, ip, &a.sin6_addr.s6_addr[12]) == 1, "an IPv4 address %s", ip);
    return a;
}

/// [::]:port.
static struct sockaddr_in6 unspecified(int port) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)port);
    return a;
}

/// Whether a is ::ffff:ip (and port, unless port < 0), written as a full sockaddr_in6.
static int is_mapped(const struct sockaddr_in6 *a, socklen_t length, const char *ip, int port) {
    struct sockaddr_in6 want = mapped(ip, port < 0 ? 0 : port);
    return length == sizeof(struct sockaddr_in6) && a->sin6_family == AF_INET6 &&
           memcmp(&a->sin6_addr, &want.sin6_addr, 16) == 0 && (port < 0 || a->sin6_port == want.sin6_port) &&
           a->sin6_flowinfo == 0 && a->sin6_scope_id == 0;
}

static int int_option(int fd, int level, int name) {
    int value = -12345;
    socklen_t length = sizeof value;
    CHECK(getsockopt(fd, level, name, &value, &length) == 0 && length == sizeof value, "getsockopt(%d, %d)", level,
          name);
    return value;
}

/// Binds l to [::]:0, listens, and returns the port getsockname shows (checked as [::]:port).
static int listen_unspecified(int l, const char *what) {
    struct sockaddr_in6 any = unspecified(0);
    CHECK(bind(l, (struct sockaddr *)&any, sizeof any) == 0, "bind [::]:0 (%s)", what);
    CHECK(listen(l, 16) == 0, "listen (%s)", what);
    struct sockaddr_in6 name;
    socklen_t length = sizeof name;
    CHECK(getsockname(l, (struct sockaddr *)&name, &length) == 0, "getsockname of the listener (%s)", what);
    CHECK(length == sizeof name && name.sin6_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&name.sin6_addr) &&
              name.sin6_port != 0,
          "the listener is [::]:port (%s)", what);
    return ntohs(name.sin6_port);
}

static void accepts_ipv4(void) {
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket(AF_INET6, SOCK_STREAM)");
    CHECK(int_option(l, SOL_SOCKET, SO_DOMAIN) == AF_INET6, "SO_DOMAIN is AF_INET6");
    CHECK(int_option(l, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "IPV6_V6ONLY is off by default (bindv6only 0)");
    int port = listen_unspecified(l, "dual-stack");
    struct sockaddr_in6 name;
    socklen_t length;
    // Accepting first: the library answers a SYN once a process waits on the listener.
    int control = command("CONNECT %d echo", port);
    CHECK(wait_for(l, POLLIN, 5000) & POLLIN, "a connection to accept");
    struct sockaddr_in6 from;
    length = sizeof from;
    int a = accept(l, (struct sockaddr *)&from, &length);
    CHECK(a >= 0, "accept");
    char line[64];
    reply_line(control, line, sizeof line, 5000);
    CHECK(strcmp(line, "OK") == 0, "the peer connected over IPv4 (got '%s')", line);
    CHECK(is_mapped(&from, length, env("PEER_ADDR"), -1), "accept gives the peer as ::ffff:%s", env("PEER_ADDR"));
    CHECK(int_option(a, SOL_SOCKET, SO_DOMAIN) == AF_INET6, "the accepted socket is AF_INET6");
    struct sockaddr_in6 peer;
    length = sizeof peer;
    CHECK(getpeername(a, (struct sockaddr *)&peer, &length) == 0 && is_mapped(&peer, length, env("PEER_ADDR"), -1) &&
              peer.sin6_port == from.sin6_port,
          "getpeername: the same v4-mapped address and port");
    length = sizeof name;
    CHECK(getsockname(a, (struct sockaddr *)&name, &length) == 0 && is_mapped(&name, length, env("STACK_ADDR"), port),
          "getsockname of the connection: ::ffff:%s:%d", env("STACK_ADDR"), port);
    // A short buffer is cut, and the length says the whole size.
    length = 8;
    CHECK(getpeername(a, (struct sockaddr *)&peer, &length) == 0 && length == sizeof peer,
          "getpeername into 8 bytes says 28");
    write_all(a, "ping", 4);
    char buffer[4];
    CHECK(read_exact(a, buffer, 4, 3000) == 4 && memcmp(buffer, "ping", 4) == 0, "the peer's echo");
    close(a);
    close(control);
    close(l);
}

static void connects_mapped(void) {
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(c >= 0, "socket(AF_INET6)");
    struct sockaddr_in6 peer = mapped(env("PEER_ADDR"), atoi(env("PEER_PORT")));
    CHECK(connect(c, (struct sockaddr *)&peer, sizeof peer) == 0, "connect to ::ffff:%s", env("PEER_ADDR"));
    struct sockaddr_in6 name;
    socklen_t length = sizeof name;
    CHECK(getpeername(c, (struct sockaddr *)&name, &length) == 0 &&
              is_mapped(&name, length, env("PEER_ADDR"), atoi(env("PEER_PORT"))),
          "getpeername: ::ffff:%s", env("PEER_ADDR"));
    length = sizeof name;
    CHECK(getsockname(c, (struct sockaddr *)&name, &length) == 0 && is_mapped(&name, length, env("STACK_ADDR"), -1) &&
              name.sin6_port != 0,
          "getsockname: ::ffff:%s and a port", env("STACK_ADDR"));
    write_all(c, "ECHO\nhello", 10);
    char buffer[5];
    CHECK(read_exact(c, buffer, 5, 3000) == 5 && memcmp(buffer, "hello", 5) == 0, "the echo over a v4-mapped connection");
    close(c);
    // An AF_INET sockaddr on an AF_INET6 socket, and one too short.
    int d = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in v4 = peer_address();
    struct sockaddr_storage big;
    memset(&big, 0, sizeof big);
    memcpy(&big, &v4, sizeof v4);
    CHECK(connect(d, (struct sockaddr *)&big, sizeof(struct sockaddr_in6)) < 0 && errno == EAFNOSUPPORT,
          "connect with an AF_INET address: EAFNOSUPPORT");
    struct sockaddr_in6 any = unspecified(0);
    CHECK(bind(d, (struct sockaddr *)&any, 16) < 0 && errno == EINVAL, "bind with 16 bytes: EINVAL");
    close(d);
}

static void v6_only(void) {
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1;
    CHECK(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0, "IPV6_V6ONLY on");
    CHECK(int_option(l, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "IPV6_V6ONLY reads 1");
    struct sockaddr_in6 own = mapped(env("STACK_ADDR"), 0);
    CHECK(bind(l, (struct sockaddr *)&own, sizeof own) < 0 && errno == EINVAL,
          "a v6-only socket cannot bind ::ffff:%s (EINVAL)", env("STACK_ADDR"));
    int port = listen_unspecified(l, "v6-only");
    CHECK(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0 && errno == EINVAL,
          "IPV6_V6ONLY after bind: EINVAL");
    int control = command("CONNECT %d echo", port);
    char line[64];
    reply_line(control, line, sizeof line, 5000);
    CHECK(strcmp(line, "ERR 111") == 0, "the v6-only listener refuses the peer's IPv4 connection (got '%s')", line);
    close(control);
    close(l);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == 0, "IPV6_V6ONLY on a client");
    struct sockaddr_in6 peer = mapped(env("PEER_ADDR"), atoi(env("PEER_PORT")));
    CHECK(connect(c, (struct sockaddr *)&peer, sizeof peer) < 0 && errno == ENETUNREACH,
          "a v6-only socket connecting to ::ffff:%s: ENETUNREACH", env("PEER_ADDR"));
    close(c);
}

static void ipv6_options(void) {
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    int tclass = 0x28;
    CHECK(int_option(s, IPPROTO_IPV6, IPV6_TCLASS) == 0, "IPV6_TCLASS starts at 0");
    CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof tclass) == 0, "IPV6_TCLASS 0x28");
    CHECK(int_option(s, IPPROTO_IPV6, IPV6_TCLASS) == 0x28, "IPV6_TCLASS reads 0x28");
    int bad = 256;
    CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_TCLASS, &bad, sizeof bad) < 0 && errno == EINVAL, "IPV6_TCLASS 256: EINVAL");
    int one = 1;
    CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) == 0, "IPV6_RECVPKTINFO on");
    CHECK(int_option(s, IPPROTO_IPV6, IPV6_RECVPKTINFO) == 1, "IPV6_RECVPKTINFO reads 1");
    CHECK(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, 2) < 0 && errno == EINVAL, "IPV6_V6ONLY with 2 bytes: EINVAL");
    // An IPv4 socket has no IPv6 level.
    int v4 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(setsockopt(v4, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0 && errno == ENOPROTOOPT,
          "IPPROTO_IPV6 on an AF_INET socket: ENOPROTOOPT");
    int value;
    socklen_t length = sizeof value;
    CHECK(getsockopt(v4, IPPROTO_IPV6, IPV6_V6ONLY, &value, &length) < 0 && errno == EOPNOTSUPP,
          "getsockopt(IPPROTO_IPV6) on an AF_INET socket: EOPNOTSUPP");
    CHECK(int_option(v4, SOL_SOCKET, SO_DOMAIN) == AF_INET, "SO_DOMAIN of an AF_INET socket");
    close(v4);
    close(s);
}

static const struct test_entry cases[] = {
    {"v6-accepts-v4", accepts_ipv4},
    {"v6-connects-mapped", connects_mapped},
    {"v6-only", v6_only},
    {"v6-options", ipv6_options},
};
RUN_CASES(cases)
