// Case 6: dup, dup2, dup3 and fcntl(F_DUPFD): duplicates reach the same connection, which
// stays open until its last descriptor is closed.
#include "lib.h"

static void duplicates(void) {
    int s = command("HOLD dup1 100");
    int d = dup(s);
    CHECK(d >= 0 && d != s, "dup");
    CHECK(dup2(s, 50) == 50, "dup2 onto 50");
    int f = fcntl(s, F_DUPFD, 60);
    CHECK(f >= 60, "F_DUPFD at or above 60 (got %d)", f);
    int g = fcntl(s, F_DUPFD_CLOEXEC, 0);
    CHECK(g >= 0 && (fcntl(g, F_GETFD) & FD_CLOEXEC), "F_DUPFD_CLOEXEC sets FD_CLOEXEC");
    CHECK(!(fcntl(d, F_GETFD) & FD_CLOEXEC), "dup does not");
    int fds[] = {d, 50, f, s};
    uint8_t buffer[25];
    for (int i = 0; i < 4; i++) {
        CHECK(read_exact(fds[i], buffer, 25, 3000) == 25 && is_pattern(buffer, (size_t)i * 25, 25),
              "bytes %d...%d through fd %d", i * 25, i * 25 + 24, fds[i]);
    }
    close(s);
    write_all(d, "a", 1);
    CHECK(!peer_saw_eof("dup1", 300, NULL), "closing one descriptor keeps the connection open");
    close(d);
    close(50);
    close(g);
    write_all(f, "b", 1);
    long bytes = 0;
    CHECK(!peer_saw_eof("dup1", 300, &bytes), "still open with one descriptor left");
    close(f);
    CHECK(peer_saw_eof("dup1", 3000, &bytes), "closing the last descriptor closes it (the peer sees EOF)");
    CHECK(bytes == 2, "the peer got both bytes (%ld)", bytes);
}

static void dup2_over(void) {
    int a = command("HOLD dupa 0");
    int b = command("HOLD dupb 0");
    CHECK(dup2(a, b) == b, "dup2(a, b)");
    CHECK(peer_saw_eof("dupb", 3000, NULL), "dup2 closed b's connection (its only descriptor)");
    write_all(b, "xy", 2);
    CHECK(dup3(a, 70, O_CLOEXEC) == 70 && (fcntl(70, F_GETFD) & FD_CLOEXEC), "dup3(O_CLOEXEC)");
    write_all(70, "z", 1);
    CHECK(dup2(a, a) == a, "dup2(a, a) is a no-op");
    close(a);
    close(b);
    long bytes = 0;
    CHECK(!peer_saw_eof("dupa", 300, &bytes), "one descriptor left");
    close(70);
    CHECK(peer_saw_eof("dupa", 3000, &bytes) && bytes == 3, "the peer got 3 bytes through b and 70, then EOF (%ld)",
          bytes);
    // A stack socket's duplicate onto a pipe's number: the pipe end is closed, the socket works.
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    int c = command("ECHO");
    CHECK(dup2(c, p[0]) == p[0], "dup2 over a pipe");
    write_all(p[0], "hello", 5);
    char echo[5];
    CHECK(read_exact(c, echo, 5, 3000) == 5 && memcmp(echo, "hello", 5) == 0, "the echo");
    CHECK(write(p[1], "x", 1) < 0 && errno == EPIPE, "the pipe's read end is gone");
    close(c);
    close(p[0]);
}

static const struct test_entry cases[] = {
    {"dup", duplicates},
    {"dup2-over", dup2_over},
};
RUN_CASES(cases)
