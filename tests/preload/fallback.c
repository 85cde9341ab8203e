// Case 8: what the stack does not carry goes to the kernel with the library loaded: AF_UNIX,
// UDP, IPv6, TCP over loopback; a listener on 0.0.0.0 takes connections from both.
#include "lib.h"

/// Writes 5 bytes one way and 5 the other over a connected pair.
static void exchange(int a, int b, const char *what) {
    char buffer[5];
    write_all(a, "hello", 5);
    CHECK(read_exact(b, buffer, 5, 3000) == 5 && memcmp(buffer, "hello", 5) == 0, "%s: a to b", what);
    write_all(b, "world", 5);
    CHECK(read_exact(a, buffer, 5, 3000) == 5 && memcmp(buffer, "world", 5) == 0, "%s: b to a", what);
}

static void kinds(void) {
    // A stack socket first, so that the library is active.
    int s = command("ECHO");
    int pair[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "socketpair(AF_UNIX)");
    exchange(pair[0], pair[1], "AF_UNIX socketpair");

    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(u >= 0, "UDP socket");
    struct sockaddr_in loop = address_of("127.0.0.1", 0);
    CHECK(bind(u, (struct sockaddr *)&loop, sizeof loop) == 0, "bind UDP to 127.0.0.1");
    struct sockaddr_in self;
    socklen_t length = sizeof self;
    CHECK(getsockname(u, (struct sockaddr *)&self, &length) == 0, "getsockname UDP");
    CHECK(sendto(u, "dgram", 5, 0, (struct sockaddr *)&self, sizeof self) == 5, "sendto self");
    char buffer[16];
    CHECK(wait_for(u, POLLIN, 3000) & POLLIN, "the datagram arrives");
    CHECK(recvfrom(u, buffer, sizeof buffer, 0, NULL, NULL) == 5 && memcmp(buffer, "dgram", 5) == 0, "recvfrom");

    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(v6 >= 0, "AF_INET6 socket");
    struct sockaddr_in6 any6;
    memset(&any6, 0, sizeof any6);
    any6.sin6_family = AF_INET6;
    any6.sin6_addr = in6addr_loopback;
    CHECK(bind(v6, (struct sockaddr *)&any6, sizeof any6) == 0, "bind [::1]:0");
    CHECK(listen(v6, 4) == 0, "listen on [::1]");
    length = sizeof any6;
    CHECK(getsockname(v6, (struct sockaddr *)&any6, &length) == 0, "getsockname [::1]");
    int c6 = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(connect(c6, (struct sockaddr *)&any6, sizeof any6) == 0, "connect to [::1]");
    int a6 = accept(v6, NULL, NULL);
    CHECK(a6 >= 0, "accept on [::1]");
    exchange(c6, a6, "TCP over IPv6 loopback");

    // TCP over 127.0.0.1: a stack socket bound to loopback, another connecting to it.
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket");
    loop = address_of("127.0.0.1", 0);
    CHECK(bind(l, (struct sockaddr *)&loop, sizeof loop) == 0, "bind 127.0.0.1:0");
    CHECK(listen(l, 4) == 0, "listen on 127.0.0.1");
    length = sizeof self;
    CHECK(getsockname(l, (struct sockaddr *)&self, &length) == 0 && self.sin_port != 0, "its port");
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY before connect");
    int r = connect(c, (struct sockaddr *)&self, sizeof self);
    CHECK(r == 0 || errno == EINPROGRESS, "non-blocking connect to 127.0.0.1");
    CHECK(wait_for(c, POLLOUT, 3000) & POLLOUT, "connected");
    int value = 0;
    length = sizeof value;
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &value, &length) == 0 && value == 0, "SO_ERROR 0");
    length = sizeof value;
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0 && value != 0,
          "TCP_NODELAY set before the fall-back is kept");
    int a = accept(l, NULL, NULL);
    CHECK(a >= 0, "accept on 127.0.0.1");
    exchange(c, a, "TCP over 127.0.0.1");
    // The loopback connection and a stack connection in one epoll set.
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = a};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, a, &e) == 0, "epoll add the loopback connection");
    e.data.fd = s;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) == 0, "epoll add the stack connection");
    write_all(c, "x", 1);
    write_all(s, "y", 1);
    int seen_a = 0, seen_s = 0;
    int64_t end = now_ms() + 3000;
    while (!(seen_a && seen_s) && now_ms() < end) {
        struct epoll_event events[4];
        int n = epoll_wait(ep, events, 4, 100);
        for (int i = 0; i < n; i++) {
            if (events[i].data.fd == a) seen_a = 1;
            if (events[i].data.fd == s) seen_s = 1;
        }
    }
    CHECK(seen_a && seen_s, "both readable through epoll (loopback %d, stack %d)", seen_a, seen_s);
    close(s);
}

/// Accepts one connection (bounded) and tells whether it came from 127.0.0.1.
static int accept_one(int l, int *from_loopback) {
    CHECK(wait_for(l, POLLIN, 3000) & POLLIN, "a connection to accept");
    struct sockaddr_in from;
    socklen_t length = sizeof from;
    int a = accept(l, (struct sockaddr *)&from, &length);
    CHECK(a >= 0, "accept");
    *from_loopback = from.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    return a;
}

static void listen_any(void) {
    int port;
    int l = listener(0, &port);
    int control = command("CONNECT %d echo", port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in loop = address_of("127.0.0.1", port);
    CHECK(connect(c, (struct sockaddr *)&loop, sizeof loop) == 0, "connect to 127.0.0.1:%d", port);
    int loopback[2];
    int a[2];
    a[0] = accept_one(l, &loopback[0]);
    a[1] = accept_one(l, &loopback[1]);
    CHECK(loopback[0] + loopback[1] == 1, "one connection from 127.0.0.1, one from the peer");
    int local = loopback[0] ? a[0] : a[1], remote = loopback[0] ? a[1] : a[0];
    exchange(c, local, "the loopback connection");
    write_all(remote, "ping", 4);
    char buffer[4];
    CHECK(read_exact(remote, buffer, 4, 3000) == 4 && memcmp(buffer, "ping", 4) == 0, "the peer's echo");
    close(control);
}

static void listen_stack_only(void) {
    int port;
    int l = listener(0, &port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in loop = address_of("127.0.0.1", port);
    CHECK(connect(c, (struct sockaddr *)&loop, sizeof loop) < 0 && errno == ECONNREFUSED,
          "MTCP_KERNEL_LISTEN=0: 127.0.0.1:%d refuses", port);
    int control = command("CONNECT %d echo", port);
    int from_loopback;
    int a = accept_one(l, &from_loopback);
    CHECK(!from_loopback, "the peer's connection");
    write_all(a, "ping", 4);
    char buffer[4];
    CHECK(read_exact(a, buffer, 4, 3000) == 4 && memcmp(buffer, "ping", 4) == 0, "the peer's echo");
    close(control);
}

static const struct test_entry cases[] = {
    {"fallback-kinds", kinds},
    {"listen-any", listen_any},
    {"listen-stack-only", listen_stack_only},
};
RUN_CASES(cases)
