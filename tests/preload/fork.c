// Case 7: fork. A connection belongs to the process that made it: a child's close must not
// end it, a child's write must not reach it. An inherited listener works in the child.
#include "lib.h"
#include <sys/prctl.h>

/// Waits (bounded) for pid; its exit status, or -1.
static int reap(pid_t pid) {
    int status = 0;
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        CHECK(r >= 0, "waitpid");
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CHECK(0, "the child exits within 5 s");
    return -1;
}

/// A listener and a connection to it from the peer, which echoes.
static int accepted_echo(int *listen_fd, int *control) {
    int port;
    *listen_fd = listener(0, &port);
    *control = command("CONNECT %d echo", port);
    int a = accept(*listen_fd, NULL, NULL);
    CHECK(a >= 0, "accept");
    char line[16];
    reply_line(*control, line, sizeof line, 3000);
    CHECK(strcmp(line, "OK") == 0, "the peer connected (%s)", line);
    return a;
}

static void ping(int a, const char *what) {
    write_all(a, "ping", 4);
    char buffer[8];
    CHECK(read_exact(a, buffer, 4, 3000) == 4 && memcmp(buffer, "ping", 4) == 0, "the echo %s", what);
    CHECK(!(wait_for(a, POLLIN, 200) & POLLIN), "nothing more than our own bytes %s", what);
}

static void child_closes(void) {
    int l, control;
    int a = accepted_echo(&l, &control);
    ping(a, "before fork");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(a);
        close(l);
        close(control);
        _exit(0);
    }
    CHECK(reap(pid) == 0, "the child exits 0");
    ping(a, "after the child closed its copy");
    // The parent's listener survives the child's close too.
    int port;
    struct sockaddr_in local;
    socklen_t length = sizeof local;
    CHECK(getsockname(l, (struct sockaddr *)&local, &length) == 0, "getsockname");
    port = ntohs(local.sin_port);
    int c2 = command("CONNECT %d send 3", port);
    CHECK(wait_for(l, POLLIN, 3000) & POLLIN, "the listener still gets connections");
    int b = accept(l, NULL, NULL);
    CHECK(b >= 0, "accept after the child's close");
    char buffer[3];
    CHECK(read_exact(b, buffer, 3, 3000) == 3, "3 bytes on it");
    close(b);
    close(c2);
    close(a);
}

static void child_writes(void) {
    int l, control;
    int a = accepted_echo(&l, &control);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        ssize_t n = write(a, "evil", 4);
        _exit(n < 0 ? 0 : 3);
    }
    int status = reap(pid);
    CHECK(status == 0, "the child's write to an inherited connection fails (child status %d)", status);
    ping(a, "after the child's write");
}

static void child_accepts(void) {
    int port;
    int l = listener(0, &port);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        struct pollfd p = {.fd = l, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1) exit(4);
        int a = accept(l, NULL, NULL);
        if (a < 0) exit(5);
        uint8_t buffer[10];
        size_t got = 0;
        int64_t end = now_ms() + 3000;
        while (got < 10 && now_ms() < end) {
            struct pollfd q = {.fd = a, .events = POLLIN};
            if (poll(&q, 1, 500) < 0) exit(6);
            ssize_t n = recv(a, buffer + got, 10 - got, MSG_DONTWAIT);
            if (n == 0) break;
            if (n > 0) got += (size_t)n;
        }
        exit(got == 10 && is_pattern(buffer, 0, 10) ? 0 : 7);
    }
    // Give the child its listener before the peer connects: a child takes it over on first use.
    usleep(300000);
    int c = command("CONNECT %d send 10", port);
    char line[16];
    reply_line(c, line, sizeof line, 5000);
    CHECK(strcmp(line, "OK") == 0, "the peer connected (%s)", line);
    int status = reap(pid);
    CHECK(status == 0, "the child accepted on the inherited listener and read 10 bytes (child status %d)", status);
    close(c);
}

static const struct test_entry cases[] = {
    {"fork-close", child_closes},
    {"fork-write", child_writes},
    {"fork-listener", child_accepts},
};
RUN_CASES(cases)
