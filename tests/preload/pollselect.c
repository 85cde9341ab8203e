// Case 3: poll, ppoll, select and pselect on stack sockets and pipes together.
#include "lib.h"

/// poll until entry `index` has one of `wanted` (bounded); its revents.
static short poll_until(struct pollfd *fds, int count, int index, short wanted, int timeout_ms) {
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - now_ms());
        CHECK(left > 0, "entry %d (fd %d) has events %#x within %d ms (last %#x)", index, fds[index].fd, wanted,
              timeout_ms, fds[index].revents);
        int n = poll(fds, (nfds_t)count, left);
        CHECK(n >= 0 || errno == EINTR, "poll");
        if (fds[index].revents & wanted) return fds[index].revents;
        if (n > 0) usleep(10000);  // other entries are ready: do not spin
    }
}

static void poll_mix(void) {
    int s = command("TRIGGER 50");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    struct pollfd f[2] = {{.fd = s, .events = POLLIN}, {.fd = p[0], .events = POLLIN}};
    CHECK(poll(f, 2, 0) == 0 && f[0].revents == 0 && f[1].revents == 0, "nothing ready");
    write_all(p[1], "x", 1);
    int n = poll(f, 2, 1000);
    CHECK(n == 1 && f[0].revents == 0 && f[1].revents == POLLIN, "only the pipe (n %d, %#x %#x)", n, f[0].revents,
          f[1].revents);
    write_all(s, "g", 1);
    poll_until(f, 2, 0, POLLIN, 3000);
    n = poll(f, 2, 0);
    CHECK(n == 2 && f[0].revents == POLLIN && f[1].revents == POLLIN, "both (n %d, %#x %#x)", n, f[0].revents,
          f[1].revents);
    f[0].events = POLLIN | POLLOUT;
    n = poll(f, 2, 0);
    CHECK(n == 2 && f[0].revents == (POLLIN | POLLOUT), "socket POLLIN|POLLOUT (%#x)", f[0].revents);
    char buffer[64];
    CHECK(read_exact(s, buffer, 50, 1000) == 50 && is_pattern((uint8_t *)buffer, 0, 50), "50 bytes");
    CHECK(read(p[0], buffer, 1) == 1, "the pipe byte");
    f[0].events = POLLIN;
    n = poll(f, 2, 0);
    CHECK(n == 0, "nothing once drained (n %d, %#x %#x)", n, f[0].revents, f[1].revents);
    // A negative fd is ignored, as the kernel does.
    struct pollfd g[2] = {{.fd = -1, .events = POLLIN}, {.fd = s, .events = POLLOUT}};
    n = poll(g, 2, 0);
    CHECK(n == 1 && g[0].revents == 0 && g[1].revents == POLLOUT, "fd -1 ignored (n %d)", n);
    close(s);
}

static void poll_hangup(void) {
    int a = command("CLOSE 0");
    int b = command("RESET 0");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    close(p[1]);
    struct pollfd f[3] = {
        {.fd = a, .events = POLLIN | POLLRDHUP}, {.fd = b, .events = 0}, {.fd = p[0], .events = POLLIN}};
    short r = poll_until(f, 3, 0, POLLRDHUP, 3000);
    CHECK((r & POLLIN) && !(r & (POLLHUP | POLLERR)), "peer's FIN: POLLIN|POLLRDHUP, no POLLHUP (%#x)", r);
    r = poll_until(f, 3, 1, POLLHUP, 3000);
    CHECK(r & POLLERR, "peer's RST: POLLHUP|POLLERR even with no events asked (%#x)", r);
    r = poll_until(f, 3, 2, POLLHUP, 3000);
    char c;
    CHECK(read(a, &c, 1) == 0, "EOF after the FIN");
    CHECK(shutdown(a, SHUT_WR) == 0, "shutdown(SHUT_WR)");
    r = poll_until(f, 3, 0, POLLHUP, 3000);
    close(a);
    close(b);
}

static void poll_timeouts(void) {
    int s = command("HOLD pto 0");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    struct pollfd f[2] = {{.fd = s, .events = POLLIN}, {.fd = p[0], .events = POLLIN}};
    int64_t t0 = now_ms();
    int n = poll(f, 2, 0);
    int64_t elapsed = now_ms() - t0;
    CHECK(n == 0 && elapsed < 100, "poll timeout 0 at once (n %d, %lld ms)", n, (long long)elapsed);
    t0 = now_ms();
    n = poll(f, 2, 200);
    elapsed = now_ms() - t0;
    CHECK(n == 0 && elapsed >= 200 && elapsed < 1500, "poll 200 ms: nothing after >= 200 ms (n %d, %lld ms)", n,
          (long long)elapsed);
    struct timespec spec = {.tv_nsec = 200 * 1000000};
    t0 = now_ms();
    n = ppoll(f, 2, &spec, NULL);
    elapsed = now_ms() - t0;
    CHECK(n == 0 && elapsed >= 200 && elapsed < 1500, "ppoll 200 ms (n %d, %lld ms)", n, (long long)elapsed);
    close(s);
}

static void select_mix(void) {
    int s = command("TRIGGER 50");
    int idle = command("HOLD sidle 0");
    int closing = command("CLOSE 300");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    int high = s;
    int all[] = {idle, closing, p[0]};
    for (int i = 0; i < 3; i++) high = all[i] > high ? all[i] : high;
    fd_set r, w, x;
    struct timeval tv = {0, 0};
    FD_ZERO(&r);
    FD_SET(s, &r);
    FD_SET(p[0], &r);
    CHECK(select(high + 1, &r, NULL, NULL, &tv) == 0, "nothing readable yet");
    CHECK(!FD_ISSET(s, &r) && !FD_ISSET(p[0], &r), "sets cleared on timeout");
    write_all(p[1], "x", 1);
    write_all(s, "g", 1);
    CHECK(wait_for(s, POLLIN, 3000) & POLLIN, "the socket's bytes arrive");
    FD_ZERO(&r);
    FD_SET(s, &r);
    FD_SET(p[0], &r);
    FD_SET(idle, &r);
    FD_ZERO(&w);
    FD_SET(idle, &w);
    FD_ZERO(&x);
    FD_SET(s, &x);
    tv = (struct timeval){1, 0};
    int n = select(high + 1, &r, &w, &x, &tv);
    CHECK(n == 3 && FD_ISSET(s, &r) && FD_ISSET(p[0], &r) && !FD_ISSET(idle, &r) && FD_ISSET(idle, &w) &&
              !FD_ISSET(s, &x),
          "socket and pipe readable, idle socket writable, no exceptional condition (n %d)", n);
    // The peer's FIN makes a socket readable.
    FD_ZERO(&r);
    FD_SET(closing, &r);
    FD_SET(idle, &r);
    tv = (struct timeval){3, 0};
    n = select(high + 1, &r, NULL, NULL, &tv);
    CHECK(n == 1 && FD_ISSET(closing, &r), "readable at the peer's close (n %d)", n);
    char c;
    CHECK(read(closing, &c, 1) == 0, "EOF");
    // Timeouts: select and pselect with 200 ms.
    FD_ZERO(&r);
    FD_SET(idle, &r);
    tv = (struct timeval){0, 200000};
    int64_t t0 = now_ms();
    n = select(high + 1, &r, NULL, NULL, &tv);
    int64_t elapsed = now_ms() - t0;
    CHECK(n == 0 && elapsed >= 200 && elapsed < 1500 && !FD_ISSET(idle, &r), "select 200 ms (n %d, %lld ms)", n,
          (long long)elapsed);
    struct timespec spec = {0, 200 * 1000000};
    FD_ZERO(&r);
    FD_SET(idle, &r);
    t0 = now_ms();
    n = pselect(high + 1, &r, NULL, NULL, &spec, NULL);
    elapsed = now_ms() - t0;
    CHECK(n == 0 && elapsed >= 200 && elapsed < 1500, "pselect 200 ms (n %d, %lld ms)", n, (long long)elapsed);
    // A closed descriptor in the sets: EBADF.
    int gone = dup(p[0]);
    close(gone);
    FD_ZERO(&r);
    FD_SET(idle, &r);
    FD_SET(gone, &r);
    tv = (struct timeval){0, 0};
    n = select((gone > high ? gone : high) + 1, &r, NULL, NULL, &tv);
    CHECK(n < 0 && errno == EBADF, "a closed fd in the set: EBADF (n %d)", n);
    close(s);
    close(idle);
}

static const struct test_entry cases[] = {
    {"poll-mix", poll_mix},
    {"poll-hup", poll_hangup},
    {"poll-timeout", poll_timeouts},
    {"select-mix", select_mix},
};
RUN_CASES(cases)
