// Case 5: non-blocking connect: EINPROGRESS, then writable with SO_ERROR 0, or SO_ERROR
// ECONNREFUSED from a closed port.
#include "lib.h"

static int so_error(int fd) {
    int value = -1;
    socklen_t length = sizeof value;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0, "getsockopt(SO_ERROR)");
    return value;
}

static void connect_ok(void) {
    struct sockaddr_in peer = peer_address();
    for (int variant = 0; variant < 2; variant++) {
        int s = variant == 0 ? socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0) : socket(AF_INET, SOCK_STREAM, 0);
        CHECK(s >= 0, "socket");
        if (variant == 1) set_nonblocking(s, 1);
        int r = connect(s, (struct sockaddr *)&peer, sizeof peer);
        CHECK(r < 0 && errno == EINPROGRESS, "connect: EINPROGRESS (variant %d, r %d)", variant, r);
        r = connect(s, (struct sockaddr *)&peer, sizeof peer);
        // While the handshake runs: EALREADY (EINPROGRESS on some kernels); 0 once it is done.
        CHECK(r == 0 || errno == EALREADY || errno == EINPROGRESS, "connect again: EALREADY, EINPROGRESS or 0");
        short revents = wait_for(s, POLLOUT, 3000);
        CHECK(revents == POLLOUT, "writable (revents %#x)", revents);
        CHECK(so_error(s) == 0, "SO_ERROR 0");
        r = connect(s, (struct sockaddr *)&peer, sizeof peer);
        CHECK(r < 0 && errno == EISCONN, "connect once connected: EISCONN");
        write_all(s, "ECHO\nhello", 10);
        char buffer[5];
        CHECK(read_exact(s, buffer, 5, 3000) == 5 && memcmp(buffer, "hello", 5) == 0, "the echo");
        close(s);
    }
}

static void connect_refused(void) {
    struct sockaddr_in closed = address_of(env("PEER_ADDR"), 7999);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0, "socket");
    int r = connect(s, (struct sockaddr *)&closed, sizeof closed);
    CHECK(r < 0 && errno == EINPROGRESS, "connect: EINPROGRESS");
    short revents = wait_for(s, POLLOUT, 3000);
    CHECK(revents & (POLLOUT | POLLERR | POLLHUP), "ready after the RST (revents %#x)", revents);
    CHECK(revents & POLLERR, "POLLERR (revents %#x)", revents);
    int error = so_error(s);
    CHECK(error == ECONNREFUSED, "SO_ERROR ECONNREFUSED (got %d %s)", error, strerror(error));
    CHECK(so_error(s) == 0, "SO_ERROR is cleared by reading it");
    close(s);
    // A blocking connect reports it directly.
    s = socket(AF_INET, SOCK_STREAM, 0);
    r = connect(s, (struct sockaddr *)&closed, sizeof closed);
    CHECK(r < 0 && errno == ECONNREFUSED, "blocking connect: ECONNREFUSED (r %d)", r);
    close(s);
}

static const struct test_entry cases[] = {
    {"nb-connect", connect_ok},
    {"nb-refused", connect_refused},
};
RUN_CASES(cases)
