/*
 * Checks of mTCP's C API one call at a time, on the stack against a kernel peer:
 *   api -f mtcp.conf -s PEER_IP -p OPEN_PORT -c CLOSED_PORT
 * OPEN_PORT on the peer echoes what it receives; nothing listens on CLOSED_PORT.
 * Prints "ok - ..." or "not ok - ..." per check and "api: N checks passed, M failed" at the end;
 * exits 0 only when every check passed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <mtcp_api.h>
#include <mtcp_epoll.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                                            \
    do {                                                                                                            \
        if (cond) {                                                                                                 \
            passed++;                                                                                               \
            printf("ok - ");                                                                                        \
        } else {                                                                                                    \
            failed++;                                                                                               \
            printf("not ok - (errno %d: %s) ", errno, strerror(errno));                                             \
        }                                                                                                           \
        printf(__VA_ARGS__);                                                                                        \
        printf("\n");                                                                                               \
        fflush(stdout);                                                                                             \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static mctx_t mctx;

static int wait_events(int ep, struct mtcp_epoll_event *events, int max, int timeout) {
    return mtcp_epoll_wait(mctx, ep, events, max, timeout);
}

/* Another thread blocks in mtcp_read on a pipe of the same context; the main thread's write
 * must wake it (the blocked call drops the context's lock while it sleeps). */
struct blocked_read {
    int id;
    char data[16];
    ssize_t got;
};

static void *read_blocking(void *arg) {
    struct blocked_read *r = arg;
    r->got = mtcp_read(mctx, r->id, r->data, sizeof r->data);
    return NULL;
}

static void check_threads(void) {
    int fds[2];
    CHECK(mtcp_pipe(mctx, fds) == 0, "a pipe for two threads");
    struct blocked_read r = {.id = fds[0], .got = -2};
    pthread_t thread;
    pthread_create(&thread, NULL, read_blocking, &r);
    usleep(100000); /* most likely blocked by now; either order must work */
    CHECK(mtcp_write(mctx, fds[1], "wake", 4) == 4, "write while another thread waits to read");
    pthread_join(thread, NULL);
    CHECK(r.got == 4 && memcmp(r.data, "wake", 4) == 0, "the blocked reader got the bytes");
    r.got = -2;
    pthread_create(&thread, NULL, read_blocking, &r);
    usleep(100000);
    CHECK(mtcp_close(mctx, fds[1]) == 0, "close the write end while another thread waits to read");
    pthread_join(thread, NULL);
    CHECK(r.got == 0, "the blocked reader sees end of file");
    mtcp_close(mctx, fds[0]);
}

static void check_pipes(void) {
    int fds[2];
    CHECK(mtcp_pipe(mctx, fds) == 0 && fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1], "mtcp_pipe gives two ids");
    int ep = mtcp_epoll_create(mctx, 16);
    CHECK(ep >= 0, "mtcp_epoll_create");
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLIN}, out[8];
    ev.data.u64 = 0x1122334455667788ull;
    CHECK(mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_ADD, fds[0], &ev) == 0, "register the read end");
    CHECK(mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_ADD, fds[0], &ev) == -1 && errno == EEXIST, "twice: EEXIST");
    CHECK(wait_events(ep, out, 8, 0) == 0, "empty pipe: no event");
    mtcp_setsock_nonblock(mctx, fds[0]);
    char buf[128];
    CHECK(mtcp_read(mctx, fds[0], buf, sizeof buf) == -1 && errno == EAGAIN, "non-blocking read of an empty pipe: EAGAIN");
    CHECK(mtcp_write(mctx, fds[1], "hello", 5) == 5, "write 5 bytes");
    int n = wait_events(ep, out, 8, 1000);
    CHECK(n == 1 && out[0].events == MTCP_EPOLLIN && out[0].data.u64 == 0x1122334455667788ull,
          "read end readable, data returned as given");
    CHECK(wait_events(ep, out, 8, 0) == 1, "level-triggered: reported again");
    int pending = 0;
    CHECK(mtcp_socket_ioctl(mctx, fds[0], FIONREAD, &pending) == 0 && pending == 5, "FIONREAD on the pipe: 5");
    CHECK(mtcp_read(mctx, fds[0], buf, 3) == 3 && memcmp(buf, "hel", 3) == 0, "read 3 bytes in order");
    CHECK(mtcp_read(mctx, fds[0], buf, sizeof buf) == 2 && memcmp(buf, "lo", 2) == 0, "read the rest");
    CHECK(wait_events(ep, out, 8, 0) == 0, "drained: no event");

    ev.events = MTCP_EPOLLIN | MTCP_EPOLLET;
    CHECK(mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_MOD, fds[0], &ev) == 0, "modify to edge-triggered");
    mtcp_write(mctx, fds[1], "ab", 2);
    CHECK(wait_events(ep, out, 8, 0) == 1, "edge-triggered: one report");
    CHECK(wait_events(ep, out, 8, 0) == 0, "edge-triggered: not again without a new edge");
    mtcp_write(mctx, fds[1], "c", 1);
    CHECK(wait_events(ep, out, 8, 0) == 1, "edge-triggered: a new write is a new edge");
    mtcp_read(mctx, fds[0], buf, sizeof buf);

    ev.events = MTCP_EPOLLIN | MTCP_EPOLLONESHOT;
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_MOD, fds[0], &ev);
    mtcp_write(mctx, fds[1], "x", 1);
    CHECK(wait_events(ep, out, 8, 0) == 1 && wait_events(ep, out, 8, 0) == 0, "one-shot: reported once");

    /* A full pipe blocks a non-blocking writer with EAGAIN; the write end is writable again after a read. */
    struct mtcp_epoll_event wev = {.events = MTCP_EPOLLOUT};
    wev.data.sockid = fds[1];
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_DEL, fds[0], NULL);
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_ADD, fds[1], &wev);
    mtcp_setsock_nonblock(mctx, fds[1]);
    static char big[100000];
    ssize_t w = mtcp_write(mctx, fds[1], big, sizeof big);
    CHECK(w == 65536 - 1, "a non-blocking write fills the 64 KiB pipe (%zd)", w);
    CHECK(mtcp_write(mctx, fds[1], big, 10) == -1 && errno == EAGAIN, "full pipe: EAGAIN");
    CHECK(wait_events(ep, out, 8, 0) == 0, "full pipe: write end not writable");
    mtcp_read(mctx, fds[0], buf, sizeof buf);
    n = wait_events(ep, out, 8, 0);
    CHECK(n == 1 && out[0].events == MTCP_EPOLLOUT && out[0].data.sockid == fds[1], "after a read: writable");

    /* Closing the writer: the reader sees the rest, then end of file, and EPOLLHUP. */
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_DEL, fds[1], NULL);
    ev.events = MTCP_EPOLLIN;
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_ADD, fds[0], &ev);
    CHECK(mtcp_close(mctx, fds[1]) == 0, "close the write end");
    n = wait_events(ep, out, 8, 0);
    CHECK(n == 1 && (out[0].events & MTCP_EPOLLHUP), "read end: EPOLLHUP after the writer closed");
    long total = 0;
    ssize_t r;
    while ((r = mtcp_read(mctx, fds[0], big, sizeof big)) > 0) total += r;
    CHECK(r == 0 && total == 65536 - 128, "the rest, then end of file (%ld bytes)", total);
    mtcp_close(mctx, fds[0]);

    /* Closing the reader: the writer gets EPIPE. */
    CHECK(mtcp_pipe(mctx, fds) == 0, "a second pipe");
    mtcp_close(mctx, fds[0]);
    CHECK(mtcp_write(mctx, fds[1], "x", 1) == -1 && errno == EPIPE, "write with the reader closed: EPIPE");
    mtcp_close(mctx, fds[1]);
    CHECK(mtcp_close(mctx, fds[1]) == -1 && errno == EBADF, "closed id: EBADF");
    mtcp_close(mctx, ep);
}

static void check_sockets(const char *peer, int open_port, int closed_port) {
    struct mtcp_conf conf;
    CHECK(mtcp_getconf(&conf) == 0 && conf.num_cores == 1 && conf.max_concurrency == 4096 && conf.rcvbuf_size == 65536,
          "mtcp_getconf reports the file's settings");
    CHECK(mtcp_socket(mctx, AF_INET6, SOCK_STREAM, 0) == -1 && errno == EAFNOSUPPORT, "AF_INET6: EAFNOSUPPORT");
    CHECK(mtcp_socket(mctx, AF_INET, SOCK_DGRAM, 0) == -1 && errno == EINVAL, "SOCK_DGRAM: EINVAL");
    CHECK(mtcp_read(mctx, 999, NULL, 0) == -1, "unknown id fails");

    struct in_addr destination, foreign;
    inet_pton(AF_INET, peer, &destination);
    inet_pton(AF_INET, "192.0.2.1", &foreign);
    CHECK(mtcp_init_rss(mctx, INADDR_ANY, 1, destination.s_addr, htons(open_port)) == 0,
          "mtcp_init_rss from INADDR_ANY (the context's address)");
    CHECK(mtcp_init_rss(mctx, foreign.s_addr, 1, destination.s_addr, htons(open_port)) == -1 && errno == EADDRNOTAVAIL,
          "mtcp_init_rss from a range without our address: EADDRNOTAVAIL");
    CHECK(mtcp_init_rss(mctx, INADDR_ANY, 0, destination.s_addr, htons(open_port)) == -1 && errno == EINVAL,
          "mtcp_init_rss with no addresses: EINVAL");

    int s = mtcp_socket(mctx, AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0, "mtcp_socket");
    int one = 1, value = 0;
    socklen_t length = sizeof value;
    CHECK(mtcp_setsockopt(mctx, s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "setsockopt TCP_NODELAY");
    CHECK(mtcp_getsockopt(mctx, s, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0 && value == 1 && length == 4,
          "getsockopt TCP_NODELAY reads it back");
    int size = 100000;
    mtcp_setsockopt(mctx, s, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    length = sizeof value;
    CHECK(mtcp_getsockopt(mctx, s, SOL_SOCKET, SO_RCVBUF, &value, &length) == 0 && value == 200000,
          "SO_RCVBUF reads back doubled, as Linux (%d)", value);
    CHECK(mtcp_setsockopt(mctx, s, SOL_SOCKET, 9999, &one, sizeof one) == -1 && errno == ENOPROTOOPT,
          "unknown option: ENOPROTOOPT");

    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(closed_port)};
    inet_pton(AF_INET, peer, &to.sin_addr);
    CHECK(mtcp_connect(mctx, s, (struct sockaddr *)&to, sizeof to) == -1 && errno == ECONNREFUSED,
          "blocking connect to a closed port: ECONNREFUSED");
    mtcp_close(mctx, s);

    s = mtcp_socket(mctx, AF_INET, SOCK_STREAM, 0);
    to.sin_port = htons(open_port);
    CHECK(mtcp_connect(mctx, s, (struct sockaddr *)&to, sizeof to) == 0, "blocking connect to the echo port");
    struct sockaddr_in name;
    socklen_t name_length = sizeof name;
    CHECK(mtcp_getpeername(mctx, s, (struct sockaddr *)&name, &name_length) == 0 && name.sin_port == htons(open_port) &&
              name.sin_addr.s_addr == to.sin_addr.s_addr && name_length == sizeof name,
          "getpeername");
    name_length = sizeof name;
    CHECK(mtcp_getsockname(mctx, s, (struct sockaddr *)&name, &name_length) == 0 && name.sin_port != 0,
          "getsockname: an ephemeral port (%d)", ntohs(name.sin_port));

    /* Blocking read with SO_RCVTIMEO: EAGAIN after about the timeout. */
    struct timeval timeout = {.tv_sec = 0, .tv_usec = 300000};
    CHECK(mtcp_setsockopt(mctx, s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0, "SO_RCVTIMEO 0.3 s");
    char buf[4096];
    double start = now();
    CHECK(mtcp_read(mctx, s, buf, sizeof buf) == -1 && errno == EAGAIN && now() - start >= 0.25,
          "blocking read times out with EAGAIN (%.2f s)", now() - start);

    struct iovec out[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
    CHECK(mtcp_writev(mctx, s, out, 3) == 8, "writev 8 bytes");
    int pending = 0;
    start = now();
    while (pending < 8 && now() - start < 5) {
        struct mtcp_epoll_event ev;
        int ep = mtcp_epoll_create1(mctx, 0);
        ev.events = MTCP_EPOLLIN;
        ev.data.sockid = s;
        mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_ADD, s, &ev);
        mtcp_epoll_wait(mctx, ep, &ev, 1, 100);
        mtcp_close(mctx, ep);
        mtcp_socket_ioctl(mctx, s, FIONREAD, &pending);
    }
    CHECK(pending == 8, "FIONREAD: the 8 echoed bytes wait");
    char a[2], b[16];
    struct iovec in[2] = {{a, 2}, {b, sizeof b}};
    CHECK(mtcp_readv(mctx, s, in, 2) == 8 && memcmp(a, "ab", 2) == 0 && memcmp(b, "cdefgh", 6) == 0,
          "readv spreads the echo over two buffers");

    int nonblocking = 1;
    CHECK(mtcp_socket_ioctl(mctx, s, FIONBIO, &nonblocking) == 0, "FIONBIO");
    start = now();
    CHECK(mtcp_read(mctx, s, buf, sizeof buf) == -1 && errno == EAGAIN,
          "non-blocking read: EAGAIN at once");
    CHECK(mtcp_recv(mctx, s, buf, sizeof buf, MSG_PEEK) == -1 && errno == EAGAIN, "recv MSG_PEEK on nothing: EAGAIN");

    CHECK(mtcp_shutdown(mctx, s, SHUT_WR) == 0, "shutdown SHUT_WR");
    nonblocking = 0;
    mtcp_socket_ioctl(mctx, s, FIONBIO, &nonblocking);
    timeout.tv_sec = 5;
    timeout.tv_usec = 0;
    mtcp_setsockopt(mctx, s, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    CHECK(mtcp_read(mctx, s, buf, sizeof buf) == 0, "the peer closes after our FIN: end of stream");
    CHECK(mtcp_close(mctx, s) == 0, "close");

    /* mtcp_abort resets: a fresh connection, aborted, then its id is free again. */
    s = mtcp_socket(mctx, AF_INET, SOCK_STREAM, 0);
    CHECK(mtcp_connect(mctx, s, (struct sockaddr *)&to, sizeof to) == 0, "connect again");
    CHECK(mtcp_abort(mctx, s) == 0, "mtcp_abort");
    int again = mtcp_socket(mctx, AF_INET, SOCK_STREAM, 0);
    CHECK(again == s, "ids are reused lowest first (%d)", again);
    mtcp_close(mctx, again);

    /* Listening: a non-blocking accept with nothing queued. */
    int l = mtcp_socket(mctx, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(9000)};
    CHECK(mtcp_bind(mctx, l, (struct sockaddr *)&any, sizeof any) == 0 && mtcp_listen(mctx, l, 16) == 0, "bind, listen");
    CHECK(mtcp_accept(mctx, l, NULL, NULL) == -1 && errno == EAGAIN, "SOCK_NONBLOCK accept: EAGAIN");
    mtcp_close(mctx, l);
}

int main(int argc, char **argv) {
    const char *config = NULL, *peer = NULL;
    int open_port = 0, closed_port = 0, opt;
    while ((opt = getopt(argc, argv, "f:s:p:c:")) != -1) {
        switch (opt) {
        case 'f': config = optarg; break;
        case 's': peer = optarg; break;
        case 'p': open_port = atoi(optarg); break;
        case 'c': closed_port = atoi(optarg); break;
        default: return 2;
        }
    }
    if (!config || !peer || !open_port || !closed_port) {
        fprintf(stderr, "usage: %s -f mtcp.conf -s PEER_IP -p OPEN_PORT -c CLOSED_PORT\n", argv[0]);
        return 2;
    }
    CHECK(mtcp_create_context(0) == NULL, "no context before mtcp_init");
    CHECK(mtcp_init(config) == 0, "mtcp_init");
    mctx = mtcp_create_context(0);
    CHECK(mctx != NULL, "mtcp_create_context(0)");
    if (!mctx) return 1;
    CHECK(mtcp_create_context(0) == NULL && errno == EEXIST, "a second context for core 0: EEXIST");
    CHECK(mtcp_create_context(1) == NULL && errno == EINVAL, "core 1 with num_cores = 1: EINVAL");
    check_pipes();
    check_threads();
    check_sockets(peer, open_port, closed_port);
    mtcp_destroy_context(mctx);
    mtcp_destroy();
    printf("api: %d checks passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
