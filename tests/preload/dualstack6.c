// IPv6 on AF_INET6 sockets (MTCP_ADDR with an IPv4 and an IPv6 address): a listener on `::`
// takes IPv6 and (IPV6_V6ONLY off) IPv4 peers, a v6-only one refuses IPv4 and sits beside a
// 0.0.0.0 listener on its port, IPV6_V6ONLY only before bind, an IPv6 client through the stack,
// and binds to IPv6 addresses nobody (or only the kernel) owns. Each case runs against the
// kernel too, and prints what it saw in lines starting "| " with the addresses and ports
// named (PEER6, ::ffff:PEER4, LPORT, ...): test-preload.sh compares those lines of the two
// runs, so that the library shows exactly what Linux shows.
//
// Besides lib.h's variables: PEER_ADDR6 and STACK_ADDR6 (the two ends' IPv6 addresses) and
// PEER6_PORT, the peer's second server (test-preload.sh's peer6.py): dual-stack on [::]:PORT,
//   WHO                "REMOTE addr port LOCAL addr port" as the peer sees the connection, then echo
//   CONNECT6 PORT      connect to [STACK_ADDR6]:PORT; "OK addr port" (the peer's end) or "ERR errno";
//                      then echo on the new connection until EOF
#include "lib.h"

static int peer6_port(void) { return atoi(env("PEER6_PORT")); }

static struct sockaddr_in6 address6(const char *ip, int port) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, ip, &a.sin6_addr) != 1) {
        fprintf(stderr, "FAIL %s: bad IPv6 address %s\n", test_case, ip);
        _exit(2);
    }
    return a;
}

/// The peer's IPv6 address with the last group replaced (an address on the prefix nobody owns).
static struct sockaddr_in6 on_prefix(uint8_t last, int port) {
    struct sockaddr_in6 a = address6(env("PEER_ADDR6"), port);
    a.sin6_addr.s6_addr[14] = 0;
    a.sin6_addr.s6_addr[15] = last;
    return a;
}

/// A command line to the peer's IPv6 server over IPv4 (its control address, port PEER6_PORT).
static int command6(const char *format, ...) {
    char line[256];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(line, sizeof line - 1, format, arguments);
    va_end(arguments);
    strcat(line, "\n");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket()");
    struct sockaddr_in peer = address_of(env("PEER_ADDR"), peer6_port());
    CHECK(connect(fd, (struct sockaddr *)&peer, sizeof peer) == 0, "connect to the peer's :%d for '%s'",
          peer6_port(), line);
    write_all(fd, line, strlen(line));
    return fd;
}

static int int_option(int fd, int level, int name) {
    int value = -12345;
    socklen_t length = sizeof value;
    CHECK(getsockopt(fd, level, name, &value, &length) == 0 && length == sizeof value, "getsockopt(%d, %d)", level,
          name);
    return value;
}

static void set_v6only(int fd, int on) {
    CHECK(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == 0, "IPV6_V6ONLY %d", on);
}

// --- Addresses named, so that the kernel's run and the library's print the same lines. ------

struct port_name {
    int port;
    const char *name;
};

static void mapped_text(const char *ip, char *out, size_t size) {
    struct in6_addr a;
    memset(&a, 0, sizeof a);
    a.s6_addr[10] = a.s6_addr[11] = 0xff;
    CHECK(inet_pton(AF_INET, ip, &a.s6_addr[12]) == 1, "IPv4 address %s", ip);
    CHECK(inet_ntop(AF_INET6, &a, out, (socklen_t)size) != NULL, "inet_ntop");
}

static const char *address_name(const char *text) {
    static char mapped_peer[INET6_ADDRSTRLEN], mapped_stack[INET6_ADDRSTRLEN], peer6[INET6_ADDRSTRLEN],
        stack6[INET6_ADDRSTRLEN];
    struct in6_addr a;
    mapped_text(env("PEER_ADDR"), mapped_peer, sizeof mapped_peer);
    mapped_text(env("STACK_ADDR"), mapped_stack, sizeof mapped_stack);
    CHECK(inet_pton(AF_INET6, env("PEER_ADDR6"), &a) == 1 && inet_ntop(AF_INET6, &a, peer6, sizeof peer6), "PEER_ADDR6");
    CHECK(inet_pton(AF_INET6, env("STACK_ADDR6"), &a) == 1 && inet_ntop(AF_INET6, &a, stack6, sizeof stack6),
          "STACK_ADDR6");
    if (strcmp(text, env("PEER_ADDR")) == 0) return "PEER4";
    if (strcmp(text, env("STACK_ADDR")) == 0) return "STACK4";
    if (strcmp(text, mapped_peer) == 0) return "::ffff:PEER4";
    if (strcmp(text, mapped_stack) == 0) return "::ffff:STACK4";
    if (strcmp(text, peer6) == 0) return "PEER6";
    if (strcmp(text, stack6) == 0) return "STACK6";
    return text;
}

/// Prints "| WHAT: family=.. len=.. addr=NAME port=NAME [flowinfo=.. scope=..]" for an address
/// a call returned in length bytes (ports named from the list, other non-zero ones "ephemeral").
static void show(const char *what, const struct sockaddr_storage *a, socklen_t length, const struct port_name *ports,
                 size_t count) {
    char text[INET6_ADDRSTRLEN];
    int port = 0;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *six = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &six->sin6_addr, text, sizeof text);
        port = ntohs(six->sin6_port);
    } else if (a->ss_family == AF_INET) {
        const struct sockaddr_in *four = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &four->sin_addr, text, sizeof text);
        port = ntohs(four->sin_port);
    } else {
        snprintf(text, sizeof text, "?");
    }
    char port_text[16];
    const char *port_label = NULL;
    for (size_t i = 0; i < count; i++)
        if (ports[i].port == port) port_label = ports[i].name;
    if (port_label == NULL) {
        snprintf(port_text, sizeof port_text, "%s", port == 0 ? "0" : "ephemeral");
        port_label = port_text;
    }
    printf("| %s: family=%s len=%u addr=%s port=%s", what,
           a->ss_family == AF_INET6  ? "AF_INET6"
           : a->ss_family == AF_INET ? "AF_INET"
                                     : "?",
           (unsigned)length, address_name(text), port_label);
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *six = (const struct sockaddr_in6 *)a;
        printf(" flowinfo=%u scope=%u", (unsigned)six->sin6_flowinfo, (unsigned)six->sin6_scope_id);
    }
    printf("\n");
    fflush(stdout);
}

static int port_of(const struct sockaddr_storage *a) {
    return a->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
                                    : ntohs(((const struct sockaddr_in *)a)->sin_port);
}

/// Whether a (length bytes) is the IPv6 address ip (text) and port (any when port < 0), a full
/// sockaddr_in6 with flowinfo and scope 0.
static int is6(const struct sockaddr_storage *a, socklen_t length, const char *ip, int port) {
    struct sockaddr_in6 want = address6(ip, port < 0 ? 0 : port);
    const struct sockaddr_in6 *six = (const struct sockaddr_in6 *)a;
    return length == sizeof(struct sockaddr_in6) && six->sin6_family == AF_INET6 &&
           memcmp(&six->sin6_addr, &want.sin6_addr, 16) == 0 && (port < 0 || six->sin6_port == want.sin6_port) &&
           six->sin6_flowinfo == 0 && six->sin6_scope_id == 0;
}

static int is_mapped(const struct sockaddr_storage *a, socklen_t length, const char *ip4, int port) {
    char text[INET6_ADDRSTRLEN];
    mapped_text(ip4, text, sizeof text);
    return is6(a, length, text, port);
}

/// Binds l to [::]:port, listens, and returns the port getsockname shows (printed, checked).
static int listen6(int l, int port, const char *what) {
    struct sockaddr_in6 any = address6("::", port);
    CHECK(bind(l, (struct sockaddr *)&any, sizeof any) == 0, "bind [::]:%d (%s)", port, what);
    CHECK(listen(l, 16) == 0, "listen (%s)", what);
    struct sockaddr_storage name;
    socklen_t length = sizeof name;
    CHECK(getsockname(l, (struct sockaddr *)&name, &length) == 0, "getsockname of the listener (%s)", what);
    int bound = port_of(&name);
    struct port_name ports[] = {{bound, "LPORT"}};
    char label[64];
    snprintf(label, sizeof label, "%s listener getsockname", what);
    show(label, &name, length, ports, 1);
    CHECK(is6(&name, length, "::", -1) && bound != 0, "the listener is [::]:port (%s)", what);
    return bound;
}

/// Reads the first word of a reply line: "OK addr port" gives the peer's port in *port.
static void expect_ok(int control, int *port, const char *what) {
    char line[128], address[64];
    reply_line(control, line, sizeof line, 5000);
    CHECK(strncmp(line, "OK", 2) == 0, "%s: the peer connected (got '%s')", what, line);
    if (port) {
        CHECK(sscanf(line, "OK %63s %d", address, port) == 2, "an 'OK addr port' reply (got '%s')", line);
        CHECK(strcmp(address_name(address), "PEER6") == 0, "%s: the peer connected from PEER6 (got %s)", what, address);
    }
}

/// Accepts one connection on l (waiting up to 5 s), prints and checks accept, getpeername and
/// getsockname: the peer is want_peer (PEER6 or ::ffff:PEER4) with peer_port (when >= 0), the
/// local end want_local with listen_port.
static int accept_and_show(int l, const char *what, int v4_peer, int peer_port, int listen_port) {
    CHECK(wait_for(l, POLLIN, 5000) & POLLIN, "%s: a connection to accept", what);
    struct sockaddr_storage from;
    memset(&from, 0xa5, sizeof from);
    socklen_t length = sizeof from;  // 128: the kernel says 28 (or 16)
    int a = accept(l, (struct sockaddr *)&from, &length);
    CHECK(a >= 0, "%s: accept", what);
    int seen_port = port_of(&from);
    struct port_name ports[] = {{listen_port, "LPORT"}, {seen_port, "PPORT"}};
    char label[96];
    snprintf(label, sizeof label, "%s accept", what);
    show(label, &from, length, ports, 2);
    if (peer_port >= 0) CHECK(seen_port == peer_port, "%s: accept shows the peer's port %d (got %d)", what, peer_port, seen_port);
    struct sockaddr_storage name;
    memset(&name, 0xa5, sizeof name);
    socklen_t name_length = sizeof name;
    CHECK(getpeername(a, (struct sockaddr *)&name, &name_length) == 0, "%s: getpeername", what);
    snprintf(label, sizeof label, "%s getpeername", what);
    show(label, &name, name_length, ports, 2);
    CHECK(name_length == length && memcmp(&name, &from, length) == 0, "%s: getpeername is what accept gave", what);
    int family = ((struct sockaddr *)&from)->sa_family;
    if (family == AF_INET6 && v4_peer)
        CHECK(is_mapped(&from, length, env("PEER_ADDR"), -1), "%s: the peer is ::ffff:%s", what, env("PEER_ADDR"));
    else if (family == AF_INET6)
        CHECK(is6(&from, length, env("PEER_ADDR6"), -1), "%s: the peer is %s", what, env("PEER_ADDR6"));
    else
        CHECK(length == sizeof(struct sockaddr_in) &&
                  ((struct sockaddr_in *)&from)->sin_addr.s_addr == address_of(env("PEER_ADDR"), 0).sin_addr.s_addr,
              "%s: the peer is %s", what, env("PEER_ADDR"));
    name_length = sizeof name;
    memset(&name, 0xa5, sizeof name);
    CHECK(getsockname(a, (struct sockaddr *)&name, &name_length) == 0, "%s: getsockname", what);
    snprintf(label, sizeof label, "%s getsockname", what);
    show(label, &name, name_length, ports, 2);
    CHECK(port_of(&name) == listen_port, "%s: getsockname has the listener's port", what);
    if (family == AF_INET6 && v4_peer)
        CHECK(is_mapped(&name, name_length, env("STACK_ADDR"), listen_port), "%s: the local end is ::ffff:%s", what,
              env("STACK_ADDR"));
    else if (family == AF_INET6)
        CHECK(is6(&name, name_length, env("STACK_ADDR6"), listen_port), "%s: the local end is %s", what,
              env("STACK_ADDR6"));
    printf("| %s: SO_DOMAIN=%s\n", what, int_option(a, SOL_SOCKET, SO_DOMAIN) == AF_INET6 ? "AF_INET6" : "AF_INET");
    // Bytes both ways (the peer echoes).
    write_all(a, "ping6", 5);
    char buffer[5];
    CHECK(read_exact(a, buffer, 5, 3000) == 5 && memcmp(buffer, "ping6", 5) == 0, "%s: the peer's echo", what);
    return a;
}

/// Nothing to accept on l for ms (the other family's listener took the connection).
static void nothing_pending(int l, const char *what) {
    CHECK(wait_for(l, POLLIN, 300) == 0, "%s: no connection pending", what);
}

// --- Cases ------------------------------------------------------------------------------------

/// (1) [::] with IPV6_V6ONLY off: an IPv6 peer and an IPv4 peer, as Linux shows them.
static void dual_listener(void) {
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket(AF_INET6)");
    printf("| IPV6_V6ONLY=%d\n", int_option(l, IPPROTO_IPV6, IPV6_V6ONLY));
    int port = listen6(l, 0, "dual-stack");
    int peer_port = -1;
    int control = command6("CONNECT6 %d", port);
    int a = accept_and_show(l, "IPv6 peer", 0, -1, port);
    expect_ok(control, &peer_port, "the IPv6 peer");
    struct sockaddr_storage from;
    socklen_t length = sizeof from;
    CHECK(getpeername(a, (struct sockaddr *)&from, &length) == 0 && port_of(&from) == peer_port,
          "getpeername shows the port the peer connected from (%d)", peer_port);
    int control4 = command("CONNECT %d echo", port);
    int b = accept_and_show(l, "IPv4 peer", 1, -1, port);
    expect_ok(control4, NULL, "the IPv4 peer");
    close(a);
    close(b);
    close(control);
    close(control4);
    close(l);
}

/// (2) [::] with IPV6_V6ONLY on: the IPv6 peer connects, the IPv4 one is refused (RST).
static void v6only_listener(void) {
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket(AF_INET6)");
    set_v6only(l, 1);
    printf("| IPV6_V6ONLY=%d\n", int_option(l, IPPROTO_IPV6, IPV6_V6ONLY));
    int port = listen6(l, 0, "v6-only");
    int peer_port = -1;
    int control = command6("CONNECT6 %d", port);
    int a = accept_and_show(l, "IPv6 peer", 0, -1, port);
    expect_ok(control, &peer_port, "the IPv6 peer");
    int control4 = command("CONNECT %d echo", port);
    char line[64];
    reply_line(control4, line, sizeof line, 5000);
    printf("| IPv4 peer: %s\n", line);
    CHECK(strcmp(line, "ERR 111") == 0, "the v6-only listener refuses the IPv4 peer: ECONNREFUSED (got '%s')", line);
    nothing_pending(l, "the v6-only listener after the IPv4 attempt");
    close(control4);
    close(a);
    close(control);
    close(l);
}

/// Which of l4 (0.0.0.0) and l6 (v6-only) has a connection to accept within ms.
static const char *arrival(int l4, int l6, int ms) {
    struct pollfd p[2] = {{.fd = l4, .events = POLLIN}, {.fd = l6, .events = POLLIN}};
    int64_t end = now_ms() + ms;
    for (;;) {
        int left = (int)(end - now_ms());
        int n = poll(p, 2, left < 0 ? 0 : left);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n >= 0, "poll of both listeners");
        int on4 = (p[0].revents & POLLIN) != 0, on6 = (p[1].revents & POLLIN) != 0;
        return on4 && on6 ? "both" : on4 ? "0.0.0.0" : on6 ? "v6-only" : "neither";
    }
}

/// The peer's reply on control within ms, or "(no reply)" (for the record of a failure).
static const char *soft_reply(int control, int ms) {
    static char line[128];
    size_t n = 0;
    while (n + 1 < sizeof line && (wait_for(control, POLLIN, ms) & (POLLIN | POLLHUP))) {
        if (read(control, line + n, 1) != 1 || line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    return n ? line : "(no reply)";
}

/// (3) 0.0.0.0:P and a v6-only [::]:P side by side: each takes its own family's peer.
static void beside_v4(void) {
    int l4 = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l4 >= 0, "socket(AF_INET)");
    struct sockaddr_in any4 = address_of("0.0.0.0", 0);
    CHECK(bind(l4, (struct sockaddr *)&any4, sizeof any4) == 0, "bind 0.0.0.0:0");
    CHECK(listen(l4, 16) == 0, "listen 0.0.0.0");
    struct sockaddr_storage name;
    socklen_t length = sizeof name;
    CHECK(getsockname(l4, (struct sockaddr *)&name, &length) == 0, "getsockname 0.0.0.0 listener");
    int port = port_of(&name);
    struct port_name ports[] = {{port, "LPORT"}};
    show("IPv4 listener getsockname", &name, length, ports, 1);
    // A dual-stack [::]:P clashes with 0.0.0.0:P.
    int dual = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 any6 = address6("::", port);
    errno = 0;
    int r = bind(dual, (struct sockaddr *)&any6, sizeof any6);
    printf("| dual-stack bind [::]:LPORT beside 0.0.0.0:LPORT: %s\n", r == 0 ? "0" : strerror(errno));
    CHECK(r < 0 && errno == EADDRINUSE, "a dual-stack [::]:%d beside 0.0.0.0:%d: EADDRINUSE", port, port);
    close(dual);
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    set_v6only(l6, 1);
    CHECK(listen6(l6, port, "v6-only") == port, "the v6-only listener on the same port");

    int control = command6("CONNECT6 %d", port);
    const char *where = arrival(l4, l6, 5000);
    printf("| the IPv6 peer's connection arrives on: %s\n", where);
    CHECK(strcmp(where, "v6-only") == 0, "the IPv6 peer's connection on the v6-only listener (got %s; the peer: %s)",
          where, soft_reply(control, 2000));
    int a = accept_and_show(l6, "IPv6 peer", 0, -1, port);
    expect_ok(control, NULL, "the IPv6 peer");
    nothing_pending(l4, "0.0.0.0 after the IPv6 peer");
    int control4 = command("CONNECT %d echo", port);
    where = arrival(l4, l6, 5000);
    printf("| the IPv4 peer's connection arrives on: %s\n", where);
    CHECK(strcmp(where, "0.0.0.0") == 0, "the IPv4 peer's connection on 0.0.0.0 (got %s; the peer: %s)", where,
          soft_reply(control4, 2000));
    int b = accept_and_show(l4, "IPv4 peer", 1, -1, port);
    expect_ok(control4, NULL, "the IPv4 peer");
    nothing_pending(l6, "the v6-only listener after the IPv4 peer");
    close(a);
    close(b);
    close(control);
    close(control4);
    close(l6);
    close(l4);
}

/// A 0.0.0.0 listener and a v6-only [::] one on one port, bound in that order or (v6_first)
/// the other; *l4 and *l6.
static int listener_pair(int v6_first, int *l4, int *l6) {
    *l4 = socket(AF_INET, SOCK_STREAM, 0);
    *l6 = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(*l4 >= 0 && *l6 >= 0, "two sockets");
    set_v6only(*l6, 1);
    struct sockaddr_storage name;
    socklen_t length = sizeof name;
    int port;
    if (v6_first) {
        struct sockaddr_in6 any6 = address6("::", 0);
        CHECK(bind(*l6, (struct sockaddr *)&any6, sizeof any6) == 0, "bind [::]:0 v6-only");
        CHECK(getsockname(*l6, (struct sockaddr *)&name, &length) == 0, "getsockname");
        port = port_of(&name);
        struct sockaddr_in any4 = address_of("0.0.0.0", port);
        CHECK(bind(*l4, (struct sockaddr *)&any4, sizeof any4) == 0, "bind 0.0.0.0:%d beside [::]:%d v6-only", port,
              port);
    } else {
        struct sockaddr_in any4 = address_of("0.0.0.0", 0);
        CHECK(bind(*l4, (struct sockaddr *)&any4, sizeof any4) == 0, "bind 0.0.0.0:0");
        CHECK(getsockname(*l4, (struct sockaddr *)&name, &length) == 0, "getsockname");
        port = port_of(&name);
        struct sockaddr_in6 any6 = address6("::", port);
        CHECK(bind(*l6, (struct sockaddr *)&any6, sizeof any6) == 0, "bind [::]:%d v6-only beside 0.0.0.0:%d", port,
              port);
    }
    CHECK(listen(*l4, 16) == 0 && listen(*l6, 16) == 0, "listen on both");
    return port;
}

/// (3b) The same pair, each listener waited on alone (as a server with a thread per listener
/// does): a peer's connection makes a poll of its own family's listener readable within 2 s,
/// whichever listener was bound first. Every combination is tried (each with a pair of its
/// own) before the case fails.
static void beside_v4_alone(void) {
    int failures = 0;
    for (int v6_first = 0; v6_first <= 1; v6_first++) {
        for (int v6_peer = 0; v6_peer <= 1; v6_peer++) {
            int l4, l6;
            int port = listener_pair(v6_first, &l4, &l6);
            int control = v6_peer ? command6("CONNECT6 %d", port) : command("CONNECT %d echo", port);
            int own = v6_peer ? l6 : l4, other = v6_peer ? l4 : l6;
            short revents = wait_for(own, POLLIN, 2000);
            printf("| %s bound first, %s peer, a poll of its own listener alone: ", v6_first ? "[::]" : "0.0.0.0",
                   v6_peer ? "IPv6" : "IPv4");
            if (revents & POLLIN) {
                printf("POLLIN\n");
                fflush(stdout);
                char what[64];
                snprintf(what, sizeof what, "%s peer (%s first)", v6_peer ? "IPv6" : "IPv4", v6_first ? "[::]" : "0.0.0.0");
                int a = accept_and_show(own, what, !v6_peer, -1, port);
                expect_ok(control, NULL, what);
                nothing_pending(other, "the other listener");
                close(a);
            } else {
                // Whether the peer's connect completed (the stack answered its SYN) or not.
                printf("nothing in 2 s (the peer: %s)\n", soft_reply(control, 300));
                fflush(stdout);
                failures++;
            }
            close(control);
            close(l4);
            close(l6);
        }
    }
    CHECK(failures == 0, "%d of the 4 polls of one listener alone saw no connection in 2 s", failures);
}

/// (4) IPV6_V6ONLY: reads back what was set, EINVAL once bound (listening or connected).
static void v6only_option(void) {
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(s >= 0, "socket(AF_INET6)");
    int values[] = {1, 0, 5, 0, 1};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        set_v6only(s, values[i]);
        int now = int_option(s, IPPROTO_IPV6, IPV6_V6ONLY);
        printf("| set %d, reads %d\n", values[i], now);
        CHECK(now == (values[i] != 0), "IPV6_V6ONLY %d reads %d (got %d)", values[i], values[i] != 0, now);
    }
    // A short buffer gets the first bytes, and the length says how many (Linux: min(len, 4)).
    unsigned char byte = 0xee;
    socklen_t length = 1;
    CHECK(getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &byte, &length) == 0, "getsockopt into 1 byte");
    printf("| getsockopt into 1 byte: length %u value %u\n", (unsigned)length, (unsigned)byte);
    CHECK(length == 1 && byte == 1, "1 byte: length 1, value 1");
    struct sockaddr_in6 any = address6("::", 0);
    CHECK(bind(s, (struct sockaddr *)&any, sizeof any) == 0, "bind [::]:0");
    for (int v = 0; v <= 1; v++) {
        errno = 0;
        int r = setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
        printf("| bound, set %d: %s\n", v, r == 0 ? "0" : strerror(errno));
        CHECK(r < 0 && errno == EINVAL, "IPV6_V6ONLY %d after bind: EINVAL", v);
    }
    printf("| bound, reads %d\n", int_option(s, IPPROTO_IPV6, IPV6_V6ONLY));
    CHECK(int_option(s, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "still 1 after the refused calls");
    CHECK(listen(s, 4) == 0, "listen");
    int zero = 0;
    errno = 0;
    int r = setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    printf("| listening, set 0: %s\n", r == 0 ? "0" : strerror(errno));
    CHECK(r < 0 && errno == EINVAL, "IPV6_V6ONLY after listen: EINVAL");
    close(s);
    // A dual-stack socket bound, then set: EINVAL, still 0.
    int d = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(int_option(d, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "a new socket reads 0 (bindv6only 0)");
    CHECK(bind(d, (struct sockaddr *)&any, sizeof any) == 0, "bind [::]:0 (dual-stack)");
    int one = 1;
    errno = 0;
    r = setsockopt(d, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    printf("| dual-stack bound, set 1: %s; reads %d\n", r == 0 ? "0" : strerror(errno),
           int_option(d, IPPROTO_IPV6, IPV6_V6ONLY));
    CHECK(r < 0 && errno == EINVAL && int_option(d, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "EINVAL, still 0");
    close(d);
    // Connected (bound by connect): EINVAL.
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 peer = address6(env("PEER_ADDR6"), peer6_port());
    CHECK(connect(c, (struct sockaddr *)&peer, sizeof peer) == 0, "connect to [%s]:%d", env("PEER_ADDR6"),
          peer6_port());
    errno = 0;
    r = setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    printf("| connected, set 1: %s; reads %d\n", r == 0 ? "0" : strerror(errno),
           int_option(c, IPPROTO_IPV6, IPV6_V6ONLY));
    CHECK(r < 0 && errno == EINVAL, "IPV6_V6ONLY on a connected socket: EINVAL");
    close(c);
}

/// One connection from c (connected to the peer's IPv6 server): WHO, then an echo.
static void who_and_echo(int c, const char *what, int local_port_expected) {
    struct sockaddr_storage name;
    socklen_t length = sizeof name;
    memset(&name, 0xa5, sizeof name);
    CHECK(getsockname(c, (struct sockaddr *)&name, &length) == 0, "%s: getsockname", what);
    int local_port = port_of(&name);
    struct port_name ports[] = {{peer6_port(), "PEER6_PORT"}, {local_port, "CPORT"}};
    char label[96];
    snprintf(label, sizeof label, "%s getsockname", what);
    show(label, &name, length, ports, 2);
    CHECK(is6(&name, length, env("STACK_ADDR6"), -1) && local_port != 0, "%s: getsockname is [%s]:port", what,
          env("STACK_ADDR6"));
    if (local_port_expected > 0) CHECK(local_port == local_port_expected, "%s: the bound port", what);
    struct sockaddr_storage peer;
    length = sizeof peer;
    memset(&peer, 0xa5, sizeof peer);
    CHECK(getpeername(c, (struct sockaddr *)&peer, &length) == 0, "%s: getpeername", what);
    snprintf(label, sizeof label, "%s getpeername", what);
    show(label, &peer, length, ports, 2);
    CHECK(is6(&peer, length, env("PEER_ADDR6"), peer6_port()), "%s: getpeername is [%s]:%d", what, env("PEER_ADDR6"),
          peer6_port());
    write_all(c, "WHO\n", 4);
    char line[160], remote[64], local[64];
    int remote_port, local_port_seen;
    reply_line(c, line, sizeof line, 5000);
    CHECK(sscanf(line, "REMOTE %63s %d LOCAL %63s %d", remote, &remote_port, local, &local_port_seen) == 4,
          "%s: a WHO reply (got '%s')", what, line);
    printf("| %s: the peer sees REMOTE %s %s LOCAL %s %s\n", what, address_name(remote),
           remote_port == local_port ? "CPORT" : "other", address_name(local),
           local_port_seen == peer6_port() ? "PEER6_PORT" : "other");
    CHECK(strcmp(address_name(remote), "STACK6") == 0 && remote_port == local_port,
          "%s: the peer sees our getsockname (got %s %d)", what, remote, remote_port);
    static uint8_t data[100000], back[100000];
    fill_pattern(data, 0, sizeof data);
    write_all(c, data, sizeof data);
    CHECK(read_exact(c, back, sizeof back, 5000) == sizeof back && is_pattern(back, 0, sizeof back),
          "%s: 100000 bytes echoed", what);
    CHECK(shutdown(c, SHUT_WR) == 0, "%s: shutdown", what);
    CHECK(read_exact(c, back, 1, 3000) == 0, "%s: the peer's FIN", what);
}

/// (5) An AF_INET6 client to the peer's IPv6 address, over the stack; then one bound first to
/// [STACK_ADDR6]:0.
static void v6_client(void) {
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(c >= 0, "socket(AF_INET6)");
    struct sockaddr_in6 peer = address6(env("PEER_ADDR6"), peer6_port());
    CHECK(connect(c, (struct sockaddr *)&peer, sizeof peer) == 0, "connect to [%s]:%d", env("PEER_ADDR6"),
          peer6_port());
    who_and_echo(c, "client", 0);
    close(c);
    int b = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 own = address6(env("STACK_ADDR6"), 0);
    CHECK(bind(b, (struct sockaddr *)&own, sizeof own) == 0, "bind [%s]:0", env("STACK_ADDR6"));
    struct sockaddr_storage name;
    socklen_t length = sizeof name;
    CHECK(getsockname(b, (struct sockaddr *)&name, &length) == 0, "getsockname after bind");
    struct port_name ports[] = {{port_of(&name), "BPORT"}};
    show("bound client before connect getsockname", &name, length, ports, 1);
    CHECK(is6(&name, length, env("STACK_ADDR6"), -1) && port_of(&name) != 0, "bound to [%s]:port", env("STACK_ADDR6"));
    CHECK(connect(b, (struct sockaddr *)&peer, sizeof peer) == 0, "connect the bound socket");
    who_and_echo(b, "bound client", port_of(&name));
    close(b);
}

/// (6) IPv6 addresses the stack does not own: on its prefix (nobody's), the peer's, another
/// network: EADDRNOTAVAIL as Linux; ::1 is the kernel's (a connection over it works); a
/// connection to a network nobody routes: ENETUNREACH.
static void foreign_bind(void) {
    struct {
        const char *what;
        struct sockaddr_in6 address;
    } binds[] = {
        {"an unowned address on the prefix", on_prefix(0x99, 0)},
        {"the peer's address", address6(env("PEER_ADDR6"), 0)},
        {"another network's address", address6("2001:db8::1", 0)},
    };
    for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++) {
        int s = socket(AF_INET6, SOCK_STREAM, 0);
        errno = 0;
        int r = bind(s, (struct sockaddr *)&binds[i].address, sizeof binds[i].address);
        printf("| bind %s: %s\n", binds[i].what, r == 0 ? "0" : strerror(errno));
        CHECK(r < 0 && errno == EADDRNOTAVAIL, "bind %s: EADDRNOTAVAIL", binds[i].what);
        // A failed bind leaves the socket usable: bound to [::]:0 now.
        struct sockaddr_in6 any = address6("::", 0);
        CHECK(bind(s, (struct sockaddr *)&any, sizeof any) == 0, "bind [::]:0 after the failure (%s)", binds[i].what);
        close(s);
    }
    // ::1, the kernel's loopback: listen, connect, bytes.
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 loop = address6("::1", 0);
    CHECK(bind(l, (struct sockaddr *)&loop, sizeof loop) == 0, "bind [::1]:0");
    CHECK(listen(l, 4) == 0, "listen on ::1");
    struct sockaddr_storage name;
    socklen_t length = sizeof name;
    CHECK(getsockname(l, (struct sockaddr *)&name, &length) == 0, "getsockname on ::1");
    int port = port_of(&name);
    struct port_name ports[] = {{port, "LPORT"}};
    show("::1 listener getsockname", &name, length, ports, 1);
    CHECK(is6(&name, length, "::1", port), "[::1]:port");
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    loop.sin6_port = htons((uint16_t)port);
    CHECK(connect(c, (struct sockaddr *)&loop, sizeof loop) == 0, "connect [::1]:%d", port);
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0, "accept on ::1");
    length = sizeof name;
    CHECK(getpeername(a, (struct sockaddr *)&name, &length) == 0, "getpeername on ::1");
    show("::1 accepted getpeername", &name, length, ports, 1);
    write_all(c, "loop", 4);
    char buffer[4];
    CHECK(read_exact(a, buffer, 4, 3000) == 4 && memcmp(buffer, "loop", 4) == 0, "bytes over ::1");
    close(a);
    close(c);
    close(l);
    // A network nobody routes.
    int u = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 far = address6("2001:db8::1", 9);
    errno = 0;
    int r = connect(u, (struct sockaddr *)&far, sizeof far);
    printf("| connect [2001:db8::1]:9: %s\n", r == 0 ? "0" : strerror(errno));
    CHECK(r < 0 && errno == ENETUNREACH, "connect to 2001:db8::1: ENETUNREACH");
    close(u);
}

static const struct test_entry cases[] = {
    {"v6-dual-listener", dual_listener},
    {"v6-only-listener", v6only_listener},
    {"v6-beside-v4", beside_v4},
    {"v6-beside-v4-alone", beside_v4_alone},
    {"v6-only-option", v6only_option},
    {"v6-client", v6_client},
    {"v6-foreign-bind", foreign_bind},
};
RUN_CASES(cases)
