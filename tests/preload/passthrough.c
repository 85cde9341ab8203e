// Case 9: prints what a program sees of sockets in the stack's namespace (no kernel address
// there). The script runs it without the library and with MTCP_ENABLE=0 and compares the
// output: the library switched off must be invisible.
#include "lib.h"

static const char *outcome(int r) {
    static char text[64];
    if (r >= 0) return "ok";
    snprintf(text, sizeof text, "errno %d (%s)", errno, strerror(errno));
    return text;
}

static void report(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    printf("socket: fd %d\n", s);
    struct stat st;
    printf("fstat: %s\n", fstat(s, &st) == 0 && S_ISSOCK(st.st_mode) ? "socket" : "not a socket");
    struct sockaddr_in peer = peer_address();
    printf("blocking connect to the peer: %s\n", outcome(connect(s, (struct sockaddr *)&peer, sizeof peer)));
    int n = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    printf("non-blocking connect to the peer: %s\n", outcome(connect(n, (struct sockaddr *)&peer, sizeof peer)));
    short revents = wait_for(n, POLLOUT, 1000);
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(n, SOL_SOCKET, SO_ERROR, &error, &length);
    printf("then: revents %#x SO_ERROR %d\n", revents, error);
    int port;
    int l = listener(0, &port);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in loop = address_of("127.0.0.1", port);
    printf("connect to 127.0.0.1: %s\n", outcome(connect(c, (struct sockaddr *)&loop, sizeof loop)));
    int a = accept(l, NULL, NULL);
    printf("accept: %s\n", outcome(a));
    write_all(c, "abc", 3);
    char buffer[3];
    printf("loopback bytes: %zu\n", read_exact(a, buffer, 3, 3000));
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = a};
    epoll_ctl(ep, EPOLL_CTL_ADD, a, &e);
    write_all(c, "d", 1);
    struct epoll_event events[4];
    printf("epoll_wait: %d\n", epoll_wait(ep, events, 4, 1000));
    int next = open("/dev/null", O_RDONLY);
    printf("next descriptor: %d\n", next);
}

static const struct test_entry cases[] = {{"passthrough", report}};
RUN_CASES(cases)
