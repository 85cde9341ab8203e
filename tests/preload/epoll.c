// Case 2: one epoll set holding stack sockets and pipes together.
#include "lib.h"

#define MAX_FD 1024

static void add(int ep, int fd, uint32_t events) {
    struct epoll_event e = {.events = events, .data.fd = fd};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == 0, "EPOLL_CTL_ADD fd %d", fd);
}

static void modify(int ep, int fd, uint32_t events) {
    struct epoll_event e = {.events = events, .data.fd = fd};
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) == 0, "EPOLL_CTL_MOD fd %d", fd);
}

/// epoll_wait that also checks that no descriptor appears twice in one result.
static int ewait(int ep, struct epoll_event *events, int max, int timeout) {
    int n;
    do {
        n = epoll_wait(ep, events, max, timeout);
    } while (n < 0 && errno == EINTR);
    CHECK(n >= 0 && n <= max, "epoll_wait returns 0...%d (got %d)", max, n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            CHECK(events[i].data.fd != events[j].data.fd, "fd %d reported twice in one epoll_wait",
                  events[i].data.fd);
    return n;
}

/// Events for fd in a result (0 when absent).
static uint32_t events_of(struct epoll_event *events, int n, int fd) {
    for (int i = 0; i < n; i++)
        if (events[i].data.fd == fd) return events[i].events;
    return 0;
}

/// Waits (bounded) until fd is reported with one of `wanted`; the number of times fd was
/// reported in the waits it took, its events in *seen.
static int until_reported(int ep, int fd, uint32_t wanted, int timeout_ms, uint32_t *seen) {
    struct epoll_event events[16];
    int64_t end = now_ms() + timeout_ms;
    int reports = 0;
    for (;;) {
        int left = (int)(end - now_ms());
        CHECK(left > 0, "fd %d reported with events %#x within %d ms", fd, wanted, timeout_ms);
        int n = ewait(ep, events, 16, left);
        uint32_t e = events_of(events, n, fd);
        if (e) reports++;
        if (e & wanted) {
            if (seen) *seen = e;
            return reports;
        }
    }
}

static void level_triggered(void) {
    int s = command("SEND 100");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    write_all(p[1], "0123456789", 10);
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    add(ep, s, EPOLLIN);
    add(ep, p[0], EPOLLIN);
    until_reported(ep, s, EPOLLIN, 3000, NULL);
    struct epoll_event events[8];
    for (int round = 0; round < 3; round++) {
        int n = ewait(ep, events, 8, 0);
        CHECK(n == 2 && events_of(events, n, s) == EPOLLIN && events_of(events, n, p[0]) == EPOLLIN,
              "level-triggered: both reported again with EPOLLIN (round %d, n %d)", round, n);
    }
    char buffer[100];
    CHECK(read(s, buffer, 50) == 50 && is_pattern((uint8_t *)buffer, 0, 50), "the first 50 bytes");
    int n = ewait(ep, events, 8, 0);
    CHECK(n == 2 && events_of(events, n, s), "still reported with 50 bytes left (n %d)", n);
    CHECK(read(s, buffer, 100) == 50 && is_pattern((uint8_t *)buffer, 50, 50), "the last 50 bytes");
    n = ewait(ep, events, 8, 0);
    CHECK(n == 1 && events_of(events, n, p[0]), "drained socket not reported, pipe still (n %d)", n);
    CHECK(read(p[0], buffer, 100) == 10, "the pipe's 10 bytes");
    n = ewait(ep, events, 8, 0);
    CHECK(n == 0, "nothing reported once both are drained (n %d)", n);
    // Writability is level-triggered too.
    modify(ep, s, EPOLLIN | EPOLLOUT);
    n = ewait(ep, events, 8, 0);
    CHECK(n == 1 && events_of(events, n, s) == EPOLLOUT, "EPOLLOUT alone for an idle socket (n %d, events %#x)", n,
          events_of(events, n, s));
    n = ewait(ep, events, 8, 0);
    CHECK(n == 1 && events_of(events, n, s) == EPOLLOUT, "EPOLLOUT again (level)");
    close(s);
}

static void edge_triggered(void) {
    int s = command("TRIGGER 100");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    add(ep, s, EPOLLIN | EPOLLET);
    add(ep, p[0], EPOLLIN | EPOLLET);
    struct epoll_event events[8];
    CHECK(ewait(ep, events, 8, 0) == 0, "nothing before any arrival");
    char buffer[400];
    for (int arrival = 1; arrival <= 3; arrival++) {
        write_all(s, "g", 1);
        int reports = until_reported(ep, s, EPOLLIN, 3000, NULL);
        CHECK(reports == 1, "one report per arrival (arrival %d: %d)", arrival, reports);
        // Unread bytes do not make another report.
        int n = ewait(ep, events, 8, 0);
        CHECK(n == 0, "no second report for arrival %d without new data (n %d, events %#x)", arrival, n,
              events_of(events, n, s));
        write_all(p[1], "x", 1);
        reports = until_reported(ep, p[0], EPOLLIN, 3000, NULL);
        CHECK(reports == 1, "one pipe report per write");
        n = ewait(ep, events, 8, 0);
        CHECK(n == 0, "no second report for the pipe (n %d)", n);
    }
    CHECK(read_exact(s, buffer, 300, 3000) == 300 && is_pattern((uint8_t *)buffer, 0, 300), "300 pattern bytes");
    CHECK(ewait(ep, events, 8, 0) == 0, "reading makes no report");
    close(s);
}

static void one_shot(void) {
    int s = command("TRIGGER 10");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    add(ep, s, EPOLLIN | EPOLLONESHOT);
    add(ep, p[0], EPOLLIN | EPOLLONESHOT);
    write_all(s, "g", 1);
    write_all(p[1], "x", 1);
    struct epoll_event events[8];
    int socket_reports = 0, pipe_reports = 0;
    int64_t end = now_ms() + 3000;
    while (socket_reports == 0 || pipe_reports == 0) {
        int left = (int)(end - now_ms());
        CHECK(left > 0, "both reported within 3 s (socket %d, pipe %d)", socket_reports, pipe_reports);
        int n = ewait(ep, events, 8, left);
        if (events_of(events, n, s)) socket_reports++;
        if (events_of(events, n, p[0])) pipe_reports++;
    }
    CHECK(socket_reports == 1 && pipe_reports == 1, "each reported once");
    char buffer[64];
    CHECK(read_exact(s, buffer, 10, 3000) == 10, "10 bytes");
    CHECK(read(p[0], buffer, 1) == 1, "the pipe byte");
    // New data on both; both stay disarmed.
    write_all(s, "g", 1);
    write_all(p[1], "x", 1);
    CHECK(wait_for(s, POLLIN, 3000) & POLLIN, "the second chunk arrives");
    int n = ewait(ep, events, 8, 300);
    CHECK(n == 0, "EPOLLONESHOT: nothing more until EPOLL_CTL_MOD (n %d)", n);
    modify(ep, s, EPOLLIN | EPOLLONESHOT);
    n = ewait(ep, events, 8, 1000);
    CHECK(n == 1 && events_of(events, n, s) == EPOLLIN, "re-armed socket reported (n %d)", n);
    n = ewait(ep, events, 8, 0);
    CHECK(n == 0, "and then disarmed again (n %d)", n);
    modify(ep, p[0], EPOLLIN | EPOLLONESHOT);
    n = ewait(ep, events, 8, 1000);
    CHECK(n == 1 && events_of(events, n, p[0]) == EPOLLIN, "re-armed pipe reported (n %d)", n);
    close(s);
}

static void fairness(void) {
    int s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = command("SEND 1000");
        CHECK(wait_for(s[i], POLLIN, 3000) & POLLIN, "socket %d readable", i);
    }
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    write_all(p[1], "0123456789", 10);
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    add(ep, s[0], EPOLLIN);
    add(ep, p[0], EPOLLIN);
    // Both always ready, one slot per wait: each must get its turn.
    int counts[MAX_FD] = {0};
    struct epoll_event events[4];
    for (int i = 0; i < 100; i++) {
        int n = ewait(ep, events, 1, 1000);
        CHECK(n == 1, "one event per wait (wait %d: %d)", i, n);
        counts[events[0].data.fd]++;
    }
    CHECK(counts[s[0]] >= 20 && counts[p[0]] >= 20,
          "maxevents 1, a stack socket and a pipe always ready: each reported in >= 20 of 100 waits "
          "(socket %d, pipe %d)",
          counts[s[0]], counts[p[0]]);
    // Three busy stack sockets and the pipe, two slots per wait.
    add(ep, s[1], EPOLLIN);
    add(ep, s[2], EPOLLIN);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 100; i++) {
        int n = ewait(ep, events, 2, 1000);
        CHECK(n == 2, "two events per wait (wait %d: %d)", i, n);
        for (int k = 0; k < n; k++) counts[events[k].data.fd]++;
    }
    CHECK(counts[s[0]] >= 10 && counts[s[1]] >= 10 && counts[s[2]] >= 10 && counts[p[0]] >= 10,
          "maxevents 2, four ready: each reported in >= 10 of 100 waits (sockets %d %d %d, pipe %d)",
          counts[s[0]], counts[s[1]], counts[s[2]], counts[p[0]]);
    for (int i = 0; i < 3; i++) close(s[i]);
}

static void hang_up(void) {
    int a = command("CLOSE 0");
    int b = command("RESET 0");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    close(p[1]);
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    add(ep, a, EPOLLIN | EPOLLRDHUP);
    add(ep, b, EPOLLIN | EPOLLRDHUP);
    add(ep, p[0], EPOLLIN);
    uint32_t seen = 0;
    until_reported(ep, a, EPOLLRDHUP, 3000, &seen);
    CHECK((seen & (EPOLLIN | EPOLLRDHUP)) == (EPOLLIN | EPOLLRDHUP) && !(seen & (EPOLLHUP | EPOLLERR)),
          "peer's FIN: EPOLLIN|EPOLLRDHUP without EPOLLHUP/EPOLLERR (got %#x)", seen);
    until_reported(ep, b, EPOLLHUP, 3000, &seen);
    // Exactly as Linux: a reset socket is shut both ways, so EPOLLRDHUP comes with it (nginx
    // closes a reset connection on EPOLLRDHUP).
    CHECK(seen == (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR),
          "peer's RST: EPOLLIN|EPOLLRDHUP|EPOLLHUP|EPOLLERR (got %#x)", seen);
    until_reported(ep, p[0], EPOLLHUP, 3000, &seen);
    char c;
    CHECK(read(a, &c, 1) == 0, "EOF after the FIN");
    CHECK(read(b, &c, 1) < 0 && errno == ECONNRESET, "ECONNRESET after the RST");
    // Closing our side too: both directions shut is EPOLLHUP.
    CHECK(shutdown(a, SHUT_WR) == 0, "shutdown(SHUT_WR)");
    until_reported(ep, a, EPOLLHUP, 3000, &seen);
    close(a);
    close(b);
}

static void timeouts(void) {
    int s = command("HOLD eto 0");
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    add(ep, s, EPOLLIN);
    add(ep, p[0], EPOLLIN);
    struct epoll_event events[8];
    int64_t t0 = now_ms();
    int n = ewait(ep, events, 8, 0);
    int64_t elapsed = now_ms() - t0;
    CHECK(n == 0 && elapsed < 100, "timeout 0 returns at once with nothing (n %d, %lld ms)", n, (long long)elapsed);
    t0 = now_ms();
    n = ewait(ep, events, 8, 200);
    elapsed = now_ms() - t0;
    CHECK(n == 0 && elapsed >= 200 && elapsed < 1500, "timeout 200 ms: nothing after >= 200 ms (n %d, %lld ms)", n,
          (long long)elapsed);
    close(s);
}

static void control_errors(void) {
    int s = command("SEND 10");
    int ep = epoll_create1(0);
    CHECK(ep >= 0, "epoll_create1");
    struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
    CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, s, &e) < 0 && errno == ENOENT, "MOD before ADD: ENOENT");
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, s, &e) < 0 && errno == ENOENT, "DEL before ADD: ENOENT");
    add(ep, s, EPOLLIN);
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &e) < 0 && errno == EEXIST, "ADD twice: EEXIST");
    until_reported(ep, s, EPOLLIN, 3000, NULL);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, s, &e) == 0, "DEL");
    struct epoll_event events[4];
    CHECK(ewait(ep, events, 4, 100) == 0, "a removed socket is not reported");
    // A closed socket leaves the set (its only descriptor is gone).
    add(ep, s, EPOLLIN);
    close(s);
    CHECK(ewait(ep, events, 4, 100) == 0, "a closed socket is not reported");
}

static const struct test_entry cases[] = {
    {"epoll-level", level_triggered}, {"epoll-edge", edge_triggered}, {"epoll-oneshot", one_shot},
    {"epoll-fair", fairness},         {"epoll-hup", hang_up},         {"epoll-timeout", timeouts},
    {"epoll-ctl", control_errors},
};
RUN_CASES(cases)
