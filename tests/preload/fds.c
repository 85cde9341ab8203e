// Case 1: stack sockets take the lowest free descriptor numbers, a closed number is reused,
// select() works with them and fstat() calls them sockets.
#include "lib.h"

static int lowest_free(void) {
    int probe = open("/dev/null", O_RDONLY);
    CHECK(probe >= 0, "open /dev/null");
    close(probe);
    return probe;
}

static void numbers(void) {
    // The library opens descriptors of its own (the link, a placeholder anchor) when the
    // first socket starts the stack: numbers are compared after that.
    close(socket(AF_INET, SOCK_STREAM, 0));
    int expected = lowest_free();
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s == expected, "socket() takes the lowest free number %d (got %d)", expected, s);
    // Make a hole below other descriptors: the next socket must fill it.
    int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY), c = open("/dev/null", O_RDONLY);
    CHECK(a >= 0 && b >= 0 && c >= 0, "three descriptors");
    close(b);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(t == b, "socket() fills the hole %d (got %d)", b, t);
    close(s);
    int u = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(u == s, "a closed socket's number %d is reused (got %d)", s, u);
    // A kernel descriptor also reuses a stack socket's closed number.
    close(t);
    int d = open("/dev/null", O_RDONLY);
    CHECK(d == t, "open() reuses the stack socket's number %d (got %d)", t, d);
    struct stat st;
    CHECK(fstat(d, &st) == 0 && S_ISCHR(st.st_mode), "the reused number is /dev/null now");
    close(u);
    // A socket and then reads on the reused number: nothing left of the old socket.
    int v = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(v == u, "number %d reused again (got %d)", u, v);
    int type = 0;
    socklen_t length = sizeof type;
    CHECK(getsockopt(v, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_STREAM, "SO_TYPE SOCK_STREAM");
    struct sockaddr_in peer;
    length = sizeof peer;
    CHECK(getpeername(v, (struct sockaddr *)&peer, &length) < 0 && errno == ENOTCONN,
          "a new socket is not connected (ENOTCONN)");
}

static void fstat_socket(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0, "socket()");
    struct stat st;
    CHECK(fstat(s, &st) == 0, "fstat");
    CHECK(S_ISSOCK(st.st_mode), "fstat says socket (mode %o)", st.st_mode);
    int c = command("SEND 10");
    CHECK(fstat(c, &st) == 0 && S_ISSOCK(st.st_mode), "a connected socket is a socket to fstat too");
    char buffer[10];
    CHECK(read_exact(c, buffer, 10, 3000) == 10 && is_pattern((uint8_t *)buffer, 0, 10), "10 pattern bytes");
    close(c);
    close(s);
}

static void select_sockets(void) {
    int idle = command("HOLD selidle 0");
    int busy = command("SEND 10");
    int other = command("DELAY 400 5");
    int high = idle > busy ? idle : busy;
    high = other > high ? other : high;
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_SET(idle, &readable);
    FD_SET(busy, &readable);
    FD_SET(other, &readable);
    struct timeval timeout = {.tv_sec = 3};
    int n = select(high + 1, &readable, NULL, NULL, &timeout);
    CHECK(n == 1, "select: one readable socket (got %d)", n);
    CHECK(FD_ISSET(busy, &readable) && !FD_ISSET(idle, &readable) && !FD_ISSET(other, &readable),
          "only the socket with data is readable");
    // Writable: every connected socket with room.
    FD_ZERO(&writable);
    FD_SET(idle, &writable);
    FD_SET(busy, &writable);
    timeout = (struct timeval){.tv_sec = 1};
    n = select(high + 1, NULL, &writable, NULL, &timeout);
    CHECK(n == 2 && FD_ISSET(idle, &writable) && FD_ISSET(busy, &writable), "both sockets writable (got %d)", n);
    // The late sender becomes readable within its delay plus slack.
    FD_ZERO(&readable);
    FD_SET(idle, &readable);
    FD_SET(other, &readable);
    timeout = (struct timeval){.tv_sec = 3};
    n = select(high + 1, &readable, NULL, NULL, &timeout);
    CHECK(n == 1 && FD_ISSET(other, &readable), "the delayed sender becomes readable (got %d)", n);
    close(idle);
    close(busy);
    close(other);
}

static const struct test_entry cases[] = {
    {"fd-numbers", numbers},
    {"fd-fstat", fstat_socket},
    {"fd-select", select_sockets},
};
RUN_CASES(cases)
