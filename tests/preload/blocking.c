// Case 4: blocking connect, accept, read and write; SO_RCVTIMEO; EINTR from a signal.
#include "lib.h"

static void block_io(void) {
    // command() itself is a blocking connect and write.
    int s = command("DELAY 300 100");
    int64_t t0 = now_ms();
    uint8_t buffer[100];
    size_t got = 0;
    while (got < 100) {
        ssize_t n = read(s, buffer + got, 100 - got);
        CHECK(n > 0, "a blocking read returns data (after %zu bytes)", got);
        got += (size_t)n;
    }
    int64_t elapsed = now_ms() - t0;
    CHECK(elapsed >= 250, "the read waited for the peer's 300 ms delay (%lld ms)", (long long)elapsed);
    CHECK(is_pattern(buffer, 0, 100), "the pattern");
    close(s);

    // One blocking write larger than any window: all of it, then the peer's count and sum.
    size_t size = 4 << 20;
    uint8_t *data = malloc(size);
    CHECK(data != NULL, "malloc");
    fill_pattern(data, 0, size);
    int sink = command("SINK");
    ssize_t n = write(sink, data, size);
    CHECK(n == (ssize_t)size, "a blocking write of 4 MiB writes it all (got %zd)", n);
    CHECK(shutdown(sink, SHUT_WR) == 0, "shutdown(SHUT_WR)");
    char line[64];
    reply_line(sink, line, sizeof line, 10000);
    unsigned long count = 0, sum = 0;
    CHECK(sscanf(line, "%lu %lu", &count, &sum) == 2, "SINK reply (got '%s')", line);
    CHECK(count == size && sum == adler32(1, data, size), "the peer got the 4 MiB byte-exact ('%s')", line);
    close(sink);
    free(data);
}

static void block_accept(void) {
    int port;
    int l = listener(0, &port);
    int c = command("CONNECT %d send 100", port);
    struct sockaddr_in from;
    socklen_t length = sizeof from;
    int a = accept(l, (struct sockaddr *)&from, &length);
    CHECK(a >= 0, "a blocking accept");
    char line[32];
    reply_line(c, line, sizeof line, 3000);
    CHECK(strcmp(line, "OK") == 0, "the peer connected (%s)", line);
    CHECK(length == sizeof from && from.sin_addr.s_addr == peer_address().sin_addr.s_addr,
          "accept gives the peer's address");
    uint8_t buffer[100];
    size_t got = 0;
    while (got < 100) {
        ssize_t n = read(a, buffer + got, 100 - got);
        CHECK(n > 0, "a blocking read on the accepted socket");
        got += (size_t)n;
    }
    CHECK(is_pattern(buffer, 0, 100), "the pattern");
    CHECK(!(fcntl(a, F_GETFL) & O_NONBLOCK), "accept gives a blocking socket");
    // accept4 with SOCK_NONBLOCK.
    int c2 = command("CONNECT %d send 1", port);
    int b = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(b >= 0, "accept4");
    CHECK(fcntl(b, F_GETFL) & O_NONBLOCK, "accept4(SOCK_NONBLOCK) gives a non-blocking socket");
    CHECK(fcntl(b, F_GETFD) & FD_CLOEXEC, "accept4(SOCK_CLOEXEC) sets FD_CLOEXEC");
    close(a);
    close(b);
    close(c);
    close(c2);
    close(l);
}

static void receive_timeout(void) {
    int s = command("HOLD rto 0");
    struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
    CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO");
    char c;
    int64_t t0 = now_ms();
    ssize_t n = read(s, &c, 1);
    int64_t elapsed = now_ms() - t0;
    CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "read times out with EAGAIN (n %zd)", n);
    CHECK(elapsed >= 300 && elapsed < 2000, "after >= 300 ms (%lld ms)", (long long)elapsed);
    // accept too.
    int port;
    int l = listener(0, &port);
    CHECK(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO on the listener");
    t0 = now_ms();
    int a = accept(l, NULL, NULL);
    elapsed = now_ms() - t0;
    CHECK(a < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "accept times out with EAGAIN");
    CHECK(elapsed >= 300 && elapsed < 2000, "after >= 300 ms (%lld ms)", (long long)elapsed);
    struct timeval back = {0};
    socklen_t length = sizeof back;
    CHECK(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &back, &length) == 0, "getsockopt(SO_RCVTIMEO)");
    CHECK(length == sizeof back && back.tv_sec == 0 && back.tv_usec == 300000,
          "SO_RCVTIMEO reads back as set (%ld s %ld us)", (long)back.tv_sec, (long)back.tv_usec);
    close(s);
    close(l);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int signal) {
    (void)signal;
    alarms++;
}

static void arm(void) {
    struct itimerval timer = {.it_value = {.tv_sec = 0, .tv_usec = 200000}};
    CHECK(setitimer(ITIMER_REAL, &timer, NULL) == 0, "setitimer");
}

static void interrupted(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    action.sa_flags = 0;  // no SA_RESTART
    sigemptyset(&action.sa_mask);
    CHECK(sigaction(SIGALRM, &action, NULL) == 0, "sigaction");
    int s = command("HOLD eintr 0");
    char c;
    arm();
    int64_t t0 = now_ms();
    ssize_t n = read(s, &c, 1);
    CHECK(n < 0 && errno == EINTR, "a blocking read is interrupted: EINTR (n %zd)", n);
    CHECK(alarms == 1 && now_ms() - t0 >= 150, "by the alarm");
    int port;
    int l = listener(0, &port);
    arm();
    int a = accept(l, NULL, NULL);
    CHECK(a < 0 && errno == EINTR, "a blocking accept is interrupted: EINTR");
    CHECK(alarms == 2, "by the alarm");
    struct pollfd p = {.fd = s, .events = POLLIN};
    arm();
    int r = poll(&p, 1, -1);
    CHECK(r < 0 && errno == EINTR, "poll without timeout is interrupted: EINTR");
    CHECK(alarms == 3, "by the alarm");
    // The socket still works afterwards.
    write_all(s, "abc", 3);
    long bytes = 0;
    close(s);
    CHECK(peer_saw_eof("eintr", 3000, &bytes) && bytes == 3, "the peer got 3 bytes and EOF (%ld)", bytes);
    close(l);
}

static const struct test_entry cases[] = {
    {"block-io", block_io},
    {"block-accept", block_accept},
    {"block-rcvtimeo", receive_timeout},
    {"block-eintr", interrupted},
};
RUN_CASES(cases)
