// Hostile arguments to every call the library exports: NULL, unaligned and kernel-half
// pointers, negative and huge lengths, iovec counts out of range, bogus and closed fds, closed
// epoll fds, unknown options and commands, and descriptors closed or reused by one thread while
// another blocks on them. Each call prints "| CALL: ret=R errno=NAME" (R exact where Linux's
// value matters, else -1, 0 or n>0); test-preload.sh runs every case against the kernel and
// under the library, and the two runs' "| " lines must be the same.
//
// Left out: calls that fault in user space before the kernel sees them, and pointers that are
// mapped nowhere but lie in the middle of the address space (the kernel answers EFAULT when it
// touches one; the library, which copies in user space, cannot tell one from a buffer short of
// its length, so only NULL, the first page and kernel-half addresses are used). Where the
// library deliberately differs a comment says why and the call prints no "| " line; calls left
// out for that reason: send with MSG_OOB (Linux sends urgent data, the stack has none: EINVAL),
// fcntl's F_GETOWN, F_SETOWN and locks (EINVAL: every placeholder shares one file),
// shutdown(SHUT_RD) of a listener and connect(AF_UNSPEC) of a connected socket (Linux dissolves
// them; EOPNOTSUPP or ENOTCONN here), SOL_SOCKET control messages (accepted, without effect),
// and a poll of more entries than an RLIMIT_NOFILE below 16 (not looked up: polled, not EINVAL).
#undef _FORTIFY_SOURCE  // the huge lengths below would stop in glibc's checks, not the kernel
// The hostile arguments are the point: gcc's warnings about them (which -Werror makes errors).
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#pragma GCC diagnostic ignored "-Wnonnull"
#pragma GCC diagnostic ignored "-Warray-bounds"
#include "lib.h"
#include <limits.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <termios.h>

// glibc's fortified entry points (the library exports them too), called directly.
extern ssize_t __read_chk(int fd, void *buffer, size_t count, size_t buffer_length);
extern ssize_t __recv_chk(int fd, void *buffer, size_t length, size_t buffer_length, int flags);
extern ssize_t __recvfrom_chk(int fd, void *buffer, size_t length, size_t buffer_length, int flags,
                              struct sockaddr *address, socklen_t *address_length);
extern int __poll_chk(struct pollfd *fds, nfds_t count, int timeout, size_t fds_length);
extern int __ppoll_chk(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask,
                       size_t fds_length);

// In the kernel's half of the address space: every access to it from user space faults.
#define KERNEL_POINTER ((void *)(uintptr_t)0xffff880000000000ull)
// In the first page, which no process maps (vm.mmap_min_addr).
#define LOW_POINTER ((void *)(uintptr_t)1)
#define EP_MAX_EVENTS (INT_MAX / (int)sizeof(struct epoll_event))

static const char *errno_name(int e) {
    static char text[16];
    const char *name = strerrorname_np(e);
    if (name != NULL) return name;
    snprintf(text, sizeof text, "%d", e);
    return text;
}

static long show(const char *what, long r, int e, int exact) {
    if (r < 0) {
        printf("| %s: ret=%ld errno=%s\n", what, r, errno_name(e));
    } else if (exact || r == 0) {
        printf("| %s: ret=%ld errno=-\n", what, r);
    } else {
        printf("| %s: ret=n>0 errno=-\n", what);
    }
    fflush(stdout);
    errno = e;
    return r;
}

// SHOW prints the result's sign (for descriptors and counts that vary), EXACT the value.
#define SHOW(what, call)           \
    ({                             \
        errno = 0;                 \
        long r_ = (long)(call);    \
        int e_ = errno;            \
        show(what, r_, e_, 0);     \
    })
#define EXACT(what, call)          \
    ({                             \
        errno = 0;                 \
        long r_ = (long)(call);    \
        int e_ = errno;            \
        show(what, r_, e_, 1);     \
    })

static void note(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    printf("| ");
    vprintf(format, arguments);
    printf("\n");
    va_end(arguments);
    fflush(stdout);
}

// --- What every case works on. -------------------------------------------------------------

static struct sockaddr_in stack_address(int port) { return address_of(env("STACK_ADDR"), port); }

/// A non-blocking TCP listener on STACK_ADDR (a port of the system's choosing).
static int stack_listener(int *port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l >= 0, "socket for the listener");
    struct sockaddr_in a = stack_address(0);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0, "bind the listener to STACK_ADDR");
    CHECK(listen(l, 16) == 0, "listen");
    socklen_t length = sizeof a;
    CHECK(getsockname(l, (struct sockaddr *)&a, &length) == 0, "getsockname of the listener");
    *port = ntohs(a.sin_port);
    set_nonblocking(l, 1);
    return l;
}

/// A descriptor number that is closed now and stays closed (above every number the case takes,
/// the lowest free being the one each new descriptor gets).
static int closed_fd(void) {
    int fd = dup2(0, 900);
    CHECK(fd == 900, "dup2(0, 900)");
    close(fd);
    return fd;
}

/// Waits (bounded) until fd has at least n bytes to read.
static void wait_bytes(int fd, int n) {
    int64_t end = now_ms() + 5000;
    for (;;) {
        int have = 0;
        CHECK(ioctl(fd, FIONREAD, &have) == 0, "FIONREAD");
        if (have >= n) return;
        CHECK(now_ms() < end, "%d bytes to read within 5 s (have %d)", n, have);
        wait_for(fd, POLLIN, 100);
        usleep(10000);
    }
}

/// Says which stream byte the next read returns (peeks one byte).
static void next_byte(int fd, const char *what, size_t offset) {
    uint8_t c = 0;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    note("%s: the next byte is byte %zu: %s", what, offset, n == 1 && c == pattern_byte(offset) ? "yes" : "no");
}

/// A connection the peer accepted through CONNECT (the peer's end echoes), accepted here.
static void peer_connects(int l, int port) {
    int control = command("CONNECT %d echo", port);
    char line[64];
    reply_line(control, line, sizeof line, 5000);
    CHECK(strncmp(line, "OK", 2) == 0, "the peer connected (got '%s')", line);
    CHECK(wait_for(l, POLLIN, 5000) & POLLIN, "a connection to accept");
    // The control connection stays open while the peer's end lives; closed with the case.
    (void)control;
}

// --- socket, bind, listen, accept, connect, shutdown, names, options, dup, close. ----------

static void sockets(void) {
    int fd;
    fd = SHOW("socket(-1, SOCK_STREAM, 0)", socket(-1, SOCK_STREAM, 0));
    fd = SHOW("socket(AF_MAX+5, SOCK_STREAM, 0)", socket(AF_MAX + 5, SOCK_STREAM, 0));
    fd = SHOW("socket(AF_INET, SOCK_STREAM|0x100, 0)", socket(AF_INET, SOCK_STREAM | 0x100, 0));
    if (fd >= 0) close(fd);
    fd = SHOW("socket(AF_INET, SOCK_STREAM|0x40000000, 0)", socket(AF_INET, SOCK_STREAM | 0x40000000, 0));
    if (fd >= 0) close(fd);
    fd = SHOW("socket(AF_INET, 12345, 0)", socket(AF_INET, 12345, 0));
    fd = SHOW("socket(AF_INET, -1, 0)", socket(AF_INET, -1, 0));
    fd = SHOW("socket(AF_INET, 0, 0)", socket(AF_INET, 0, 0));
    fd = SHOW("socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    fd = SHOW("socket(AF_INET, SOCK_STREAM, -1)", socket(AF_INET, SOCK_STREAM, -1));
    fd = SHOW("socket(AF_INET, SOCK_STREAM, 99999)", socket(AF_INET, SOCK_STREAM, 99999));
    fd = SHOW("socket(AF_INET6, SOCK_STREAM, 99999)", socket(AF_INET6, SOCK_STREAM, 99999));
    fd = SHOW("socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, IPPROTO_TCP)",
              socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
    EXACT("  its F_GETFL & O_NONBLOCK", fcntl(fd, F_GETFL) & O_NONBLOCK);
    EXACT("  its F_GETFD", fcntl(fd, F_GETFD));
    close(fd);

    int port;
    int l = stack_listener(&port);
    int c = command("HOLD sockets 0");
    int null = open("/dev/null", O_RDWR);
    CHECK(null >= 0, "open /dev/null");
    int gone = closed_fd();
    struct sockaddr_in a = stack_address(0);
    struct sockaddr_in peer = peer_address();
    struct sockaddr_storage storage;
    socklen_t length;

    // bind
    EXACT("bind(-1)", bind(-1, (struct sockaddr *)&a, sizeof a));
    EXACT("bind(1<<20)", bind(1 << 20, (struct sockaddr *)&a, sizeof a));
    EXACT("bind(closed fd)", bind(gone, (struct sockaddr *)&a, sizeof a));
    EXACT("bind(/dev/null)", bind(null, (struct sockaddr *)&a, sizeof a));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("bind(s, NULL, 16)", bind(s, NULL, sizeof a));
    EXACT("bind(s, NULL, 0)", bind(s, NULL, 0));
    EXACT("bind(s, kernel pointer, 16)", bind(s, KERNEL_POINTER, sizeof a));
    EXACT("bind(s, &a, 0)", bind(s, (struct sockaddr *)&a, 0));
    EXACT("bind(s, &a, 8)", bind(s, (struct sockaddr *)&a, 8));
    EXACT("bind(s, &a, -1)", bind(s, (struct sockaddr *)&a, (socklen_t)-1));
    EXACT("bind(s, &a, 129)", bind(s, (struct sockaddr *)&storage, 129));
    struct sockaddr_in wrong = a;
    wrong.sin_family = AF_INET6;
    EXACT("bind(s, family AF_INET6, 16)", bind(s, (struct sockaddr *)&wrong, sizeof wrong));
    wrong.sin_family = AF_UNSPEC;
    EXACT("bind(s, AF_UNSPEC STACK_ADDR, 16)", bind(s, (struct sockaddr *)&wrong, sizeof wrong));
    // An address nobody here owns.
    struct sockaddr_in foreign = address_of("192.0.2.77", 0);
    int t = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("bind(t, 192.0.2.77)", bind(t, (struct sockaddr *)&foreign, sizeof foreign));
    close(t);
    t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in unspec_any = address_of("0.0.0.0", 0);
    unspec_any.sin_family = AF_UNSPEC;
    EXACT("bind(t, AF_UNSPEC 0.0.0.0, 16)", bind(t, (struct sockaddr *)&unspec_any, sizeof unspec_any));
    length = sizeof storage;
    getsockname(t, (struct sockaddr *)&storage, &length);
    note("  then getsockname: family %s port %s", storage.ss_family == AF_INET ? "AF_INET" : "other",
         ((struct sockaddr_in *)&storage)->sin_port != 0 ? "set" : "0");
    close(t);
    // Unaligned: a sockaddr_in at an odd address works.
    char raw[sizeof a + 1];
    memcpy(raw + 1, &a, sizeof a);
    EXACT("bind(s, unaligned &a, 16)", bind(s, (struct sockaddr *)(raw + 1), sizeof a));
    EXACT("bind(s, &a, 16) again", bind(s, (struct sockaddr *)&a, sizeof a));
    EXACT("bind(s, &a, 128) (long)", bind(s, (struct sockaddr *)&a, 128));
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    EXACT("bind(s6, NULL, 28)", bind(s6, NULL, sizeof a6));
    EXACT("bind(s6, &a6, 20)", bind(s6, (struct sockaddr *)&a6, 20));
    EXACT("bind(s6, &a6, -1)", bind(s6, (struct sockaddr *)&a6, (socklen_t)-1));
    EXACT("bind(s6, AF_INET address, 28)", bind(s6, (struct sockaddr *)&a, sizeof a6));
    close(s6);

    // listen
    EXACT("listen(-1)", listen(-1, 5));
    EXACT("listen(/dev/null)", listen(null, 5));
    EXACT("listen(closed fd)", listen(gone, 5));
    EXACT("listen(connected, 5)", listen(c, 5));
    t = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("listen(unbound, -1)", listen(t, -1));
    EXACT("listen(again, INT_MAX)", listen(t, INT_MAX));
    EXACT("listen(again, INT_MIN)", listen(t, INT_MIN));
    close(t);

    // accept, accept4
    EXACT("accept(-1)", accept(-1, NULL, NULL));
    EXACT("accept(/dev/null)", accept(null, NULL, NULL));
    EXACT("accept(closed fd)", accept(gone, NULL, NULL));
    EXACT("accept4(-1, flags 0x1)", accept4(-1, NULL, NULL, 0x1));
    EXACT("accept4(l, flags 0x40000000)", accept4(l, NULL, NULL, 0x40000000));
    EXACT("accept4(l, flags -1)", accept4(l, NULL, NULL, -1));
    EXACT("accept(l) none pending", accept(l, NULL, NULL));
    EXACT("accept(l, &a, NULL) none pending", accept(l, (struct sockaddr *)&storage, NULL));
    length = (socklen_t)-1;
    EXACT("accept(l, &a, &-1) none pending", accept(l, (struct sockaddr *)&storage, &length));
    EXACT("accept(connected)", accept(c, NULL, NULL));
    t = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("accept(fresh socket)", accept(t, NULL, NULL));
    close(t);
    // With a connection waiting: an address the call cannot write fails the call, and the
    // connection it took is gone (Linux closes it).
    peer_connects(l, port);
    EXACT("accept(l, &a, NULL) one pending", accept(l, (struct sockaddr *)&storage, NULL));
    EXACT("  then accept(l)", accept(l, NULL, NULL));
    peer_connects(l, port);
    length = (socklen_t)-1;
    EXACT("accept(l, &a, &-1) one pending", accept(l, (struct sockaddr *)&storage, &length));
    peer_connects(l, port);
    length = sizeof storage;
    fd = SHOW("accept(l, NULL, &128) one pending", accept(l, NULL, &length));
    note("  length after: %u", (unsigned)length);
    close(fd);
    peer_connects(l, port);
    length = 0;
    fd = SHOW("accept(l, &a, &0)", accept(l, (struct sockaddr *)&storage, &length));
    note("  length after: %u", (unsigned)length);
    close(fd);
    peer_connects(l, port);
    memset(&storage, 0xa5, sizeof storage);
    length = 4;
    fd = SHOW("accept(l, &a, &4)", accept(l, (struct sockaddr *)&storage, &length));
    note("  length after: %u, family %s, byte 4 untouched: %s", (unsigned)length,
         storage.ss_family == AF_INET ? "AF_INET" : "other", ((uint8_t *)&storage)[4] == 0xa5 ? "yes" : "no");
    close(fd);
    peer_connects(l, port);
    char unaligned_name[sizeof(struct sockaddr_in) + 1];
    length = sizeof(struct sockaddr_in);
    fd = SHOW("accept4(l, unaligned &a, &16, SOCK_CLOEXEC)",
              accept4(l, (struct sockaddr *)(unaligned_name + 1), &length, SOCK_CLOEXEC));
    struct sockaddr_in shown;
    memcpy(&shown, unaligned_name + 1, sizeof shown);
    note("  length after: %u, family %s, address is the peer's: %s", (unsigned)length,
         shown.sin_family == AF_INET ? "AF_INET" : "other", shown.sin_addr.s_addr == peer.sin_addr.s_addr ? "yes" : "no");
    EXACT("  its F_GETFD", fcntl(fd, F_GETFD));
    close(fd);

    // connect
    EXACT("connect(-1)", connect(-1, (struct sockaddr *)&peer, sizeof peer));
    EXACT("connect(/dev/null)", connect(null, (struct sockaddr *)&peer, sizeof peer));
    t = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("connect(t, NULL, 16)", connect(t, NULL, sizeof peer));
    EXACT("connect(t, kernel pointer, 16)", connect(t, KERNEL_POINTER, sizeof peer));
    EXACT("connect(t, &peer, 0)", connect(t, (struct sockaddr *)&peer, 0));
    EXACT("connect(t, &peer, 1)", connect(t, (struct sockaddr *)&peer, 1));
    EXACT("connect(t, &peer, 8)", connect(t, (struct sockaddr *)&peer, 8));
    EXACT("connect(t, &peer, -1)", connect(t, (struct sockaddr *)&peer, (socklen_t)-1));
    EXACT("connect(t, &peer, 200)", connect(t, (struct sockaddr *)&peer, 200));
    wrong = peer;
    wrong.sin_family = AF_INET6;
    EXACT("connect(t, family AF_INET6, 16)", connect(t, (struct sockaddr *)&wrong, sizeof wrong));
    wrong.sin_family = AF_UNSPEC;
    EXACT("connect(t, AF_UNSPEC, 16) (fresh)", connect(t, (struct sockaddr *)&wrong, sizeof wrong));
    char unaligned_peer[sizeof peer + 1];
    memcpy(unaligned_peer + 1, &peer, sizeof peer);
    EXACT("connect(t, unaligned &peer, 16)", connect(t, (struct sockaddr *)(unaligned_peer + 1), sizeof peer));
    EXACT("connect(t, &peer, 16) again", connect(t, (struct sockaddr *)&peer, sizeof peer));
    EXACT("connect(t, &peer, 8) connected", connect(t, (struct sockaddr *)&peer, 8));
    close(t);
    EXACT("connect(listener, &peer, 16)", connect(l, (struct sockaddr *)&peer, sizeof peer));

    // shutdown
    EXACT("shutdown(-1)", shutdown(-1, SHUT_RD));
    EXACT("shutdown(/dev/null)", shutdown(null, SHUT_RD));
    EXACT("shutdown(c, 3)", shutdown(c, 3));
    EXACT("shutdown(c, -1)", shutdown(c, -1));
    EXACT("shutdown(c, INT_MAX)", shutdown(c, INT_MAX));
    t = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("shutdown(fresh, SHUT_RDWR)", shutdown(t, SHUT_RDWR));
    EXACT("shutdown(fresh, 7)", shutdown(t, 7));
    close(t);

    // getsockname, getpeername
    EXACT("getsockname(-1)", getsockname(-1, (struct sockaddr *)&storage, &length));
    EXACT("getsockname(/dev/null)", getsockname(null, (struct sockaddr *)&storage, &length));
    length = 16;
    EXACT("getsockname(c, NULL, &16)", getsockname(c, NULL, &length));
    EXACT("getsockname(c, &a, NULL)", getsockname(c, (struct sockaddr *)&storage, NULL));
    EXACT("getsockname(c, &a, kernel pointer)", getsockname(c, (struct sockaddr *)&storage, KERNEL_POINTER));
    length = 0;
    EXACT("getsockname(c, NULL, &0)", getsockname(c, NULL, &length));
    note("  length after: %u", (unsigned)length);
    length = (socklen_t)-1;
    EXACT("getsockname(c, &a, &-1)", getsockname(c, (struct sockaddr *)&storage, &length));
    memset(&storage, 0xa5, sizeof storage);
    length = 3;
    EXACT("getsockname(c, &a, &3)", getsockname(c, (struct sockaddr *)&storage, &length));
    note("  length after: %u, byte 3 untouched: %s", (unsigned)length, ((uint8_t *)&storage)[3] == 0xa5 ? "yes" : "no");
    char unaligned_local[sizeof(struct sockaddr_in) + 1];
    length = sizeof(struct sockaddr_in);
    EXACT("getsockname(c, unaligned &a, &16)", getsockname(c, (struct sockaddr *)(unaligned_local + 1), &length));
    t = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("getpeername(fresh, NULL, NULL)", getpeername(t, NULL, NULL));
    length = sizeof storage;
    EXACT("getpeername(fresh, &a, &128)", getpeername(t, (struct sockaddr *)&storage, &length));
    close(t);
    EXACT("getpeername(listener, &a, &128)", getpeername(l, (struct sockaddr *)&storage, &length));
    length = 16;
    EXACT("getpeername(c, NULL, &16)", getpeername(c, NULL, &length));
    EXACT("getpeername(c, &a, NULL)", getpeername(c, (struct sockaddr *)&storage, NULL));
    length = (socklen_t)-1;
    EXACT("getpeername(c, &a, &-1)", getpeername(c, (struct sockaddr *)&storage, &length));
    length = 0;
    EXACT("getpeername(c, &a, &0)", getpeername(c, (struct sockaddr *)&storage, &length));
    note("  length after: %u", (unsigned)length);
    memset(&storage, 0, sizeof storage);
    length = 8;
    EXACT("getpeername(c, &a, &8)", getpeername(c, (struct sockaddr *)&storage, &length));
    note("  length after: %u, port is the peer's: %s", (unsigned)length,
         ((struct sockaddr_in *)&storage)->sin_port == peer.sin_port ? "yes" : "no");

    // setsockopt
    int one = 1, value = 0;
    EXACT("setsockopt(-1)", setsockopt(-1, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    EXACT("setsockopt(/dev/null)", setsockopt(null, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    EXACT("setsockopt(c, SO_REUSEADDR, NULL, 4)", setsockopt(c, SOL_SOCKET, SO_REUSEADDR, NULL, 4));
    EXACT("setsockopt(c, SO_REUSEADDR, NULL, 0)", setsockopt(c, SOL_SOCKET, SO_REUSEADDR, NULL, 0));
    EXACT("setsockopt(c, SO_REUSEADDR, kernel pointer, 4)",
          setsockopt(c, SOL_SOCKET, SO_REUSEADDR, KERNEL_POINTER, 4));
    EXACT("setsockopt(c, SO_REUSEADDR, &1, 2)", setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, 2));
    EXACT("setsockopt(c, SO_REUSEADDR, &1, -1)", setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, (socklen_t)-1));
    EXACT("setsockopt(c, SO_REUSEADDR, NULL, -1)", setsockopt(c, SOL_SOCKET, SO_REUSEADDR, NULL, (socklen_t)-1));
    char unaligned_int[sizeof one + 1];
    memcpy(unaligned_int + 1, &one, sizeof one);
    EXACT("setsockopt(c, SO_KEEPALIVE, unaligned &1, 4)",
          setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, unaligned_int + 1, sizeof one));
    EXACT("setsockopt(c, SO_KEEPALIVE, &1, 8) (long)", setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &storage, 8));
    EXACT("setsockopt(c, SOL_SOCKET, 9999, &1, 4)", setsockopt(c, SOL_SOCKET, 9999, &one, sizeof one));
    EXACT("setsockopt(c, SOL_SOCKET, 9999, NULL, 4)", setsockopt(c, SOL_SOCKET, 9999, NULL, 4));
    EXACT("setsockopt(c, SOL_SOCKET, 9999, &1, 2)", setsockopt(c, SOL_SOCKET, 9999, &one, 2));
    EXACT("setsockopt(c, level 9999, 1, &1, 4)", setsockopt(c, 9999, 1, &one, sizeof one));
    EXACT("setsockopt(c, level 9999, 1, NULL, 4)", setsockopt(c, 9999, 1, NULL, 4));
    EXACT("setsockopt(c, level -1, 1, &1, 4)", setsockopt(c, -1, 1, &one, sizeof one));
    EXACT("setsockopt(c, IPPROTO_IP, 9999, &1, 4)", setsockopt(c, IPPROTO_IP, 9999, &one, sizeof one));
    EXACT("setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &1, 4) (AF_INET)",
          setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one));
    EXACT("setsockopt(c, IPPROTO_TCP, 9999, &1, 4)", setsockopt(c, IPPROTO_TCP, 9999, &one, sizeof one));
    EXACT("setsockopt(c, IPPROTO_TCP, 9999, NULL, 4)", setsockopt(c, IPPROTO_TCP, 9999, NULL, 4));
    EXACT("setsockopt(c, IPPROTO_TCP, 9999, &1, 1)", setsockopt(c, IPPROTO_TCP, 9999, &one, 1));
    EXACT("setsockopt(c, TCP_NODELAY, NULL, 4)", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, NULL, 4));
    EXACT("setsockopt(c, TCP_NODELAY, &1, 3)", setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, 3));
    value = 0;
    EXACT("setsockopt(c, TCP_KEEPIDLE, &0, 4)", setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &value, 4));
    value = 200;
    EXACT("setsockopt(c, TCP_KEEPCNT, &200, 4)", setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &value, 4));
    EXACT("setsockopt(c, TCP_CONGESTION, \"nonesuch\", 9)",
          setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "nonesuch", 9));
    EXACT("setsockopt(c, TCP_CONGESTION, \"x\", 0)", setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "x", 0));
    EXACT("setsockopt(c, TCP_CONGESTION, NULL, 5)", setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, NULL, 5));
    value = -5;
    EXACT("setsockopt(c, SO_RCVBUF, &-5, 4)", setsockopt(c, SOL_SOCKET, SO_RCVBUF, &value, 4));
    EXACT("setsockopt(c, SO_LINGER, &1, 4)", setsockopt(c, SOL_SOCKET, SO_LINGER, &one, 4));
    EXACT("setsockopt(c, SO_LINGER, NULL, 8)", setsockopt(c, SOL_SOCKET, SO_LINGER, NULL, 8));
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    EXACT("setsockopt(c, SO_RCVTIMEO, &tv, 8)", setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, 8));
    EXACT("setsockopt(c, SO_RCVTIMEO, NULL, 16)", setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, NULL, sizeof tv));
    tv = (struct timeval){.tv_sec = 0, .tv_usec = 1000000};
    EXACT("setsockopt(c, SO_RCVTIMEO, {0, 1000000}, 16)", setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    tv = (struct timeval){.tv_sec = 0, .tv_usec = -1};
    EXACT("setsockopt(c, SO_SNDTIMEO, {0, -1}, 16)", setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    tv = (struct timeval){.tv_sec = -1, .tv_usec = 0};
    EXACT("setsockopt(c, SO_RCVTIMEO, {-1, 0}, 16)", setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    tv = (struct timeval){.tv_sec = 7, .tv_usec = 0};
    length = sizeof tv;
    EXACT("  then getsockopt(SO_RCVTIMEO)", getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, &length));
    note("  length %u, %ld s %ld us", (unsigned)length, (long)tv.tv_sec, (long)tv.tv_usec);

    // getsockopt
    length = 4;
    EXACT("getsockopt(-1)", getsockopt(-1, SOL_SOCKET, SO_TYPE, &value, &length));
    EXACT("getsockopt(/dev/null)", getsockopt(null, SOL_SOCKET, SO_TYPE, &value, &length));
    length = 4;
    EXACT("getsockopt(c, SO_TYPE, NULL, &4)", getsockopt(c, SOL_SOCKET, SO_TYPE, NULL, &length));
    length = 0;
    EXACT("getsockopt(c, SO_TYPE, NULL, &0)", getsockopt(c, SOL_SOCKET, SO_TYPE, NULL, &length));
    note("  length after: %u", (unsigned)length);
    EXACT("getsockopt(c, SO_TYPE, &v, NULL)", getsockopt(c, SOL_SOCKET, SO_TYPE, &value, NULL));
    length = (socklen_t)-1;
    EXACT("getsockopt(c, SO_TYPE, &v, &-1)", getsockopt(c, SOL_SOCKET, SO_TYPE, &value, &length));
    value = -1;
    length = 2;
    EXACT("getsockopt(c, SO_TYPE, &v, &2)", getsockopt(c, SOL_SOCKET, SO_TYPE, &value, &length));
    note("  length after: %u, value 0x%x", (unsigned)length, (unsigned)value);
    length = 64;
    EXACT("getsockopt(c, SO_TYPE, &v, &64)", getsockopt(c, SOL_SOCKET, SO_TYPE, &storage, &length));
    note("  length after: %u", (unsigned)length);
    char unaligned_value[sizeof(int) + 1];
    length = sizeof(int);
    EXACT("getsockopt(c, SO_TYPE, unaligned &v, &4)", getsockopt(c, SOL_SOCKET, SO_TYPE, unaligned_value + 1, &length));
    memcpy(&value, unaligned_value + 1, sizeof value);
    note("  value SOCK_STREAM: %s", value == SOCK_STREAM ? "yes" : "no");
    length = 4;
    EXACT("getsockopt(c, SOL_SOCKET, 9999)", getsockopt(c, SOL_SOCKET, 9999, &value, &length));
    EXACT("getsockopt(c, SOL_SOCKET, 9999, &v, NULL)", getsockopt(c, SOL_SOCKET, 9999, &value, NULL));
    EXACT("getsockopt(c, level 9999, 1)", getsockopt(c, 9999, 1, &value, &length));
    EXACT("getsockopt(c, level 9999, 1, NULL, NULL)", getsockopt(c, 9999, 1, NULL, NULL));
    EXACT("getsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY) (AF_INET)", getsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &value, &length));
    EXACT("getsockopt(c, IPPROTO_TCP, 9999)", getsockopt(c, IPPROTO_TCP, 9999, &value, &length));
    EXACT("getsockopt(c, IPPROTO_TCP, 9999, &v, NULL)", getsockopt(c, IPPROTO_TCP, 9999, &value, NULL));
    length = 4;
    EXACT("getsockopt(c, TCP_NODELAY, NULL, &4)", getsockopt(c, IPPROTO_TCP, TCP_NODELAY, NULL, &length));
    length = (socklen_t)-1;
    EXACT("getsockopt(c, TCP_NODELAY, &v, &-1)", getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &value, &length));
    length = 1;
    EXACT("getsockopt(c, TCP_NODELAY, &v, &1)", getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &value, &length));
    note("  length after: %u", (unsigned)length);
    length = 64;
    EXACT("getsockopt(c, TCP_NODELAY, &v, &64)", getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &storage, &length));
    note("  length after: %u", (unsigned)length);
    length = 0;
    EXACT("getsockopt(c, SO_ERROR, &v, &0)", getsockopt(c, SOL_SOCKET, SO_ERROR, &value, &length));
    note("  length after: %u", (unsigned)length);
    length = 4;
    EXACT("getsockopt(c, SO_LINGER, &v, &4)", getsockopt(c, SOL_SOCKET, SO_LINGER, &value, &length));
    note("  length after: %u", (unsigned)length);

    // fcntl, ioctl on a stack socket
    EXACT("fcntl(-1, F_GETFL)", fcntl(-1, F_GETFL));
    EXACT("fcntl(1<<20, F_GETFD)", fcntl(1 << 20, F_GETFD));
    EXACT("fcntl(closed fd, F_GETFL)", fcntl(gone, F_GETFL));
    EXACT("fcntl(c, 9999)", fcntl(c, 9999));
    EXACT("fcntl(c, -1)", fcntl(c, -1));
    EXACT("fcntl64(c, 9999)", fcntl64(c, 9999));
    EXACT("fcntl(c, F_GETFL)", fcntl(c, F_GETFL));
    EXACT("fcntl(c, F_SETFL, O_NONBLOCK|O_APPEND)", fcntl(c, F_SETFL, O_NONBLOCK | O_APPEND));
    EXACT("  then F_GETFL", fcntl(c, F_GETFL));
    EXACT("fcntl(c, F_SETFL, O_DIRECT)", fcntl(c, F_SETFL, O_DIRECT));
    EXACT("  then F_GETFL", fcntl(c, F_GETFL));
    EXACT("fcntl(c, F_SETFL, 0)", fcntl(c, F_SETFL, 0));
    EXACT("  then F_GETFL", fcntl(c, F_GETFL));
    EXACT("fcntl64(c, F_GETFL)", fcntl64(c, F_GETFL));
    EXACT("fcntl(c, F_SETFD, -1)", fcntl(c, F_SETFD, -1));
    EXACT("  then F_GETFD", fcntl(c, F_GETFD));
    EXACT("fcntl(c, F_SETFD, 0)", fcntl(c, F_SETFD, 0));
    EXACT("fcntl(c, F_DUPFD, -1)", fcntl(c, F_DUPFD, -1));
    EXACT("fcntl(c, F_DUPFD, 1<<30)", fcntl(c, F_DUPFD, 1 << 30));
    EXACT("fcntl(c, F_DUPFD_CLOEXEC, INT_MAX)", fcntl(c, F_DUPFD_CLOEXEC, INT_MAX));
    fd = SHOW("fcntl(c, F_DUPFD_CLOEXEC, 0)", fcntl(c, F_DUPFD_CLOEXEC, 0));
    EXACT("  its F_GETFD", fcntl(fd, F_GETFD));
    EXACT("  getpeername through it", getpeername(fd, (struct sockaddr *)&storage, &(socklen_t){sizeof storage}));
    close(fd);
    int n = 0;
    EXACT("ioctl(-1, FIONREAD)", ioctl(-1, FIONREAD, &n));
    EXACT("ioctl(closed fd, FIONREAD)", ioctl(gone, FIONREAD, &n));
    EXACT("ioctl(c, FIONREAD, NULL)", ioctl(c, FIONREAD, NULL));
    EXACT("ioctl(c, FIONREAD, kernel pointer)", ioctl(c, FIONREAD, KERNEL_POINTER));
    EXACT("ioctl(c, FIONBIO, NULL)", ioctl(c, FIONBIO, NULL));
    char unaligned_n[sizeof n + 1];
    memset(unaligned_n, 0x55, sizeof unaligned_n);
    EXACT("ioctl(c, FIONREAD, unaligned)", ioctl(c, FIONREAD, unaligned_n + 1));
    memcpy(&n, unaligned_n + 1, sizeof n);
    note("  value %d", n);
    EXACT("ioctl(c, 0xdeadbeef, &n)", ioctl(c, 0xdeadbeef, &n));
    EXACT("ioctl(c, 0xdeadbeef, NULL)", ioctl(c, 0xdeadbeef, NULL));
    struct termios terminal;
    EXACT("ioctl(c, TCGETS, &termios)", ioctl(c, TCGETS, &terminal));
    EXACT("ioctl(c, FIOCLEX)", ioctl(c, FIOCLEX));
    EXACT("  then F_GETFD", fcntl(c, F_GETFD));
    EXACT("ioctl(c, FIONCLEX)", ioctl(c, FIONCLEX));
    EXACT("  then F_GETFD", fcntl(c, F_GETFD));
    EXACT("ioctl(l, FIONREAD, &n) (listener)", ioctl(l, FIONREAD, &n));

    // dup, dup2, dup3
    EXACT("dup(-1)", dup(-1));
    EXACT("dup(1<<20)", dup(1 << 20));
    EXACT("dup(closed fd)", dup(gone));
    EXACT("dup2(c, -1)", dup2(c, -1));
    EXACT("dup2(c, 1<<30)", dup2(c, 1 << 30));
    EXACT("dup2(-1, c)", dup2(-1, c));
    EXACT("dup2(closed fd, c)", dup2(gone, c));
    EXACT("  then getpeername(c)", getpeername(c, (struct sockaddr *)&storage, &(socklen_t){sizeof storage}));
    EXACT("dup2(c, c)", dup2(c, c) == c);
    EXACT("dup3(c, c, 0)", dup3(c, c, 0));
    EXACT("dup3(c, closed fd, 0x1234)", dup3(c, gone, 0x1234));
    EXACT("dup3(l, c, 0x1234)", dup3(l, c, 0x1234));
    EXACT("  then getpeername(c)", getpeername(c, (struct sockaddr *)&storage, &(socklen_t){sizeof storage}));
    EXACT("dup3(-1, c, O_CLOEXEC)", dup3(-1, c, O_CLOEXEC));
    EXACT("  then getpeername(c)", getpeername(c, (struct sockaddr *)&storage, &(socklen_t){sizeof storage}));
    EXACT("dup3(c, closed fd, O_CLOEXEC)", dup3(c, gone, O_CLOEXEC) == gone);
    EXACT("  its F_GETFD", fcntl(gone, F_GETFD));
    EXACT("  getpeername through it", getpeername(gone, (struct sockaddr *)&storage, &(socklen_t){sizeof storage}));
    EXACT("  close it", close(gone));
    EXACT("  close it again", close(gone));

    // close
    EXACT("close(-1)", close(-1));
    EXACT("close(1<<20)", close(1 << 20));
    EXACT("close(INT_MIN)", close(INT_MIN));
    t = socket(AF_INET, SOCK_STREAM, 0);
    EXACT("close(fresh)", close(t));
    EXACT("close(fresh) again", close(t));
    EXACT("  then getsockname", getsockname(t, (struct sockaddr *)&storage, &(socklen_t){sizeof storage}));

    // memfd_create (exported for DPDK's EAL)
    EXACT("memfd_create(NULL, 0)", memfd_create(NULL, 0));
    EXACT("memfd_create(\"x\", 0xdead)", memfd_create("x", 0xdead));
    EXACT("memfd_create(kernel pointer, 0)", memfd_create(KERNEL_POINTER, 0));

    close(s);
    close(c);
    close(l);
    close(null);
}

// --- read, write and the rest of the data calls. -------------------------------------------

static void data(void) {
    // d: the peer sends 4000 bytes; h: the peer sends nothing and reads what comes.
    int d = command("SEND 4000");
    int h = command("HOLD data 0");
    set_nonblocking(h, 1);
    int null = open("/dev/null", O_RDWR);
    int gone = closed_fd();
    int port;
    int l = stack_listener(&port);
    int fresh = socket(AF_INET, SOCK_STREAM, 0);
    // Heap buffers: the huge lengths below are checked against the address space from them.
    uint8_t *buffer = malloc(8192);
    CHECK(buffer != NULL, "malloc");
    size_t consumed = 0;
    wait_bytes(d, 4000);

    // read
    EXACT("read(-1)", read(-1, buffer, 10));
    EXACT("read(1<<20)", read(1 << 20, buffer, 10));
    EXACT("read(closed fd)", read(gone, buffer, 10));
    EXACT("read(d, NULL, 10)", read(d, NULL, 10));
    next_byte(d, "  then", consumed);
    EXACT("read(d, first page, 10)", read(d, LOW_POINTER, 10));
    EXACT("read(d, kernel pointer, 10)", read(d, KERNEL_POINTER, 10));
    EXACT("read(d, NULL, 0)", read(d, NULL, 0));
    EXACT("read(d, buffer, 0)", read(d, buffer, 0));
    EXACT("read(d, buffer, SIZE_MAX)", read(d, buffer, SIZE_MAX));
    EXACT("read(d, buffer, SSIZE_MAX)", read(d, buffer, SSIZE_MAX));
    EXACT("read(d, unaligned, 10)", read(d, buffer + 1, 10));
    note("  the bytes: %s", is_pattern(buffer + 1, consumed, 10) ? "yes" : "no");
    consumed += 10;
    EXACT("read(h, NULL, 10) nothing to read", read(h, NULL, 10));
    EXACT("read(h, buffer, SIZE_MAX) nothing to read", read(h, buffer, SIZE_MAX));
    EXACT("read(h, kernel pointer, 10) nothing to read", read(h, KERNEL_POINTER, 10));
    EXACT("read(listener)", read(l, buffer, 10));
    EXACT("read(fresh)", read(fresh, buffer, 10));
    EXACT("read(fresh, buffer, 0)", read(fresh, buffer, 0));
    EXACT("__read_chk(d, NULL, 10, 10)", __read_chk(d, NULL, 10, 10));
    EXACT("__read_chk(d, buffer, 10, 8192)", __read_chk(d, buffer, 10, 8192));
    consumed += 10;

    // recv, recvfrom
    EXACT("recv(-1)", recv(-1, buffer, 10, 0));
    EXACT("recv(/dev/null)", recv(null, buffer, 10, 0));
    EXACT("recv(d, NULL, 10, 0)", recv(d, NULL, 10, 0));
    EXACT("recv(d, NULL, 10, MSG_PEEK)", recv(d, NULL, 10, MSG_PEEK));
    EXACT("recv(d, first page, 10, 0)", recv(d, LOW_POINTER, 10, 0));
    EXACT("recv(d, kernel pointer, 10, 0)", recv(d, KERNEL_POINTER, 10, 0));
    EXACT("recv(d, kernel pointer, SIZE_MAX, 0)", recv(d, KERNEL_POINTER, SIZE_MAX, 0));
    next_byte(d, "  then", consumed);
    EXACT("recv(d, NULL, 0, 0)", recv(d, NULL, 0, 0));
    EXACT("recv(d, buffer, 10, MSG_ERRQUEUE)", recv(d, buffer, 10, MSG_ERRQUEUE));
    EXACT("recv(d, buffer, 10, MSG_OOB)", recv(d, buffer, 10, MSG_OOB));
    EXACT("recv(d, NULL, 10, MSG_TRUNC)", recv(d, NULL, 10, MSG_TRUNC));
    consumed += 10;
    next_byte(d, "  then", consumed);
    EXACT("recv(d, buffer, 10, MSG_TRUNC|MSG_PEEK)", recv(d, buffer, 10, MSG_TRUNC | MSG_PEEK));
    EXACT("recv(d, unaligned, 10, 0)", recv(d, buffer + 3, 10, 0));
    note("  the bytes: %s", is_pattern(buffer + 3, consumed, 10) ? "yes" : "no");
    consumed += 10;
    // SIZE_MAX and SSIZE_MAX are cut to what one call moves (INT_MAX less a page), which the
    // heap buffer's address leaves room for; the peek takes only what is there.
    EXACT("recv(d, buffer, SIZE_MAX, MSG_PEEK)", recv(d, buffer, SIZE_MAX, MSG_PEEK) > 0);
    EXACT("recv(d, buffer, SSIZE_MAX, MSG_PEEK)", recv(d, buffer, SSIZE_MAX, MSG_PEEK) > 0);
    EXACT("recv(h, NULL, 10, 0) nothing to read", recv(h, NULL, 10, 0));
    EXACT("recv(h, buffer, SIZE_MAX, 0) nothing to read", recv(h, buffer, SIZE_MAX, 0));
    EXACT("recv(listener)", recv(l, buffer, 10, 0));
    EXACT("recv(listener, buffer, 0, 0)", recv(l, buffer, 0, 0));
    EXACT("recv(fresh, buffer, 10, MSG_DONTWAIT)", recv(fresh, buffer, 10, MSG_DONTWAIT));
    EXACT("__recv_chk(d, NULL, 10, 10, 0)", __recv_chk(d, NULL, 10, 10, 0));
    struct sockaddr_storage from;
    socklen_t length = sizeof from;
    EXACT("recvfrom(-1)", recvfrom(-1, buffer, 10, 0, (struct sockaddr *)&from, &length));
    EXACT("recvfrom(d, buffer, 10, 0, &a, &128)", recvfrom(d, buffer, 10, 0, (struct sockaddr *)&from, &length));
    consumed += 10;
    note("  length after: %u", (unsigned)length);
    length = 77;
    EXACT("recvfrom(d, buffer, 10, 0, NULL, &77)", recvfrom(d, buffer, 10, 0, NULL, &length));
    consumed += 10;
    note("  length after: %u", (unsigned)length);
    EXACT("recvfrom(d, buffer, 10, 0, &a, NULL)", recvfrom(d, buffer, 10, 0, (struct sockaddr *)&from, NULL));
    consumed += 10;  // Linux takes the bytes, then fails writing the address length
    next_byte(d, "  then", consumed);
    length = (socklen_t)-1;
    EXACT("recvfrom(d, buffer, 10, 0, &a, &-1)", recvfrom(d, buffer, 10, 0, (struct sockaddr *)&from, &length));
    consumed += 10;
    next_byte(d, "  then", consumed);
    length = 16;
    EXACT("recvfrom(d, buffer, 10, 0, first page, &16)", recvfrom(d, buffer, 10, 0, LOW_POINTER, &length));
    consumed += 10;
    note("  length after: %u", (unsigned)length);
    EXACT("recvfrom(d, NULL, 10, 0, &a, &16)", recvfrom(d, NULL, 10, 0, (struct sockaddr *)&from, &length));
    EXACT("recvfrom(h, buffer, 10, 0, &a, NULL) nothing to read",
          recvfrom(h, buffer, 10, 0, (struct sockaddr *)&from, NULL));
    EXACT("__recvfrom_chk(d, buffer, 10, 8192, 0, &a, NULL)",
          __recvfrom_chk(d, buffer, 10, 8192, 0, (struct sockaddr *)&from, NULL));
    consumed += 10;
    next_byte(d, "  then", consumed);

    // readv
    struct iovec v[IOV_MAX + 1];
    for (int k = 0; k <= IOV_MAX; k++) v[k] = (struct iovec){buffer + 100 + k, 0};
    EXACT("readv(-1)", readv(-1, v, 1));
    EXACT("readv(/dev/null, NULL, 1)", readv(null, NULL, 1));
    EXACT("readv(d, NULL, 0)", readv(d, NULL, 0));
    EXACT("readv(d, NULL, 1)", readv(d, NULL, 1));
    EXACT("readv(d, kernel pointer, 1)", readv(d, KERNEL_POINTER, 1));
    EXACT("readv(d, v, -1)", readv(d, v, -1));
    EXACT("readv(d, v, IOV_MAX+1)", readv(d, v, IOV_MAX + 1));
    EXACT("readv(d, v, INT_MAX)", readv(d, v, INT_MAX));
    EXACT("readv(d, IOV_MAX empty buffers)", readv(d, v, IOV_MAX));
    v[0] = (struct iovec){NULL, 10};
    EXACT("readv(d, {NULL, 10}, 1)", readv(d, v, 1));
    v[0] = (struct iovec){NULL, 0};
    EXACT("readv(d, {NULL, 0}, 1)", readv(d, v, 1));
    v[0] = (struct iovec){buffer, 5};
    v[1] = (struct iovec){NULL, 10};
    // Linux's TCP copies a segment's worth at once: the fault fails the whole call.
    EXACT("readv(d, {buffer, 5}, {NULL, 10})", readv(d, v, 2));
    next_byte(d, "  then", consumed);
    v[0] = (struct iovec){buffer, SIZE_MAX};
    EXACT("readv(d, {buffer, SIZE_MAX}, 1)", readv(d, v, 1));
    v[0] = (struct iovec){buffer, (size_t)SSIZE_MAX};
    v[1] = (struct iovec){buffer, 1};
    EXACT("readv(d, {buffer, SSIZE_MAX}, {buffer, 1})", readv(d, v, 2));
    v[0] = (struct iovec){buffer, 5};
    v[1] = (struct iovec){buffer + 5, SIZE_MAX};
    EXACT("readv(d, {buffer, 5}, {buffer, SIZE_MAX})", readv(d, v, 2));
    v[0] = (struct iovec){KERNEL_POINTER, 5};
    EXACT("readv(d, {kernel pointer, 5}, 1)", readv(d, v, 1));
    v[0] = (struct iovec){LOW_POINTER, 5};
    EXACT("readv(d, {first page, 5}, 1)", readv(d, v, 1));
    next_byte(d, "  then", consumed);
    // Unaligned: the iovec array itself at an odd address.
    char raw[2 * sizeof(struct iovec) + 1];
    struct iovec pair[2] = {{buffer, 3}, {buffer + 3, 4}};
    memcpy(raw + 1, pair, sizeof pair);
    EXACT("readv(d, unaligned iovec array, 2)", readv(d, (struct iovec *)(raw + 1), 2));
    note("  the bytes: %s", is_pattern(buffer, consumed, 7) ? "yes" : "no");
    consumed += 7;
    v[0] = (struct iovec){buffer, 3};
    EXACT("readv(h, {buffer, 3}, 1) nothing to read", readv(h, v, 1));
    v[0] = (struct iovec){NULL, 3};
    EXACT("readv(h, {NULL, 3}, 1) nothing to read", readv(h, v, 1));
    v[0] = (struct iovec){buffer, 3};
    EXACT("readv(listener)", readv(l, v, 1));

    // recvmsg
    struct msghdr m;
    struct iovec one = {buffer, 10};
    uint8_t control[64];
    EXACT("recvmsg(-1, NULL)", recvmsg(-1, NULL, 0));
    EXACT("recvmsg(/dev/null, NULL)", recvmsg(null, NULL, 0));
    EXACT("recvmsg(d, NULL)", recvmsg(d, NULL, 0));
    EXACT("recvmsg(d, kernel pointer)", recvmsg(d, KERNEL_POINTER, 0));
    m = (struct msghdr){.msg_iov = v, .msg_iovlen = IOV_MAX + 1};
    EXACT("recvmsg(d, iovlen IOV_MAX+1)", recvmsg(d, &m, 0));
    m = (struct msghdr){.msg_iov = v, .msg_iovlen = (size_t)-1};
    EXACT("recvmsg(d, iovlen -1)", recvmsg(d, &m, 0));
    m = (struct msghdr){.msg_iov = NULL, .msg_iovlen = 1};
    EXACT("recvmsg(d, iov NULL, iovlen 1)", recvmsg(d, &m, 0));
    m = (struct msghdr){.msg_iov = NULL, .msg_iovlen = 0};
    EXACT("recvmsg(d, iov NULL, iovlen 0)", recvmsg(d, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = &from, .msg_namelen = (socklen_t)-1};
    EXACT("recvmsg(d, namelen -1)", recvmsg(d, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = NULL, .msg_namelen = (socklen_t)-1};
    EXACT("recvmsg(d, name NULL, namelen -1)", recvmsg(d, &m, 0));
    consumed += 10;
    note("  namelen after: %u", (unsigned)m.msg_namelen);
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = LOW_POINTER, .msg_namelen = 16};
    EXACT("recvmsg(d, name first page, namelen 16)", recvmsg(d, &m, 0));
    consumed += 10;
    note("  namelen after: %u", (unsigned)m.msg_namelen);
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = &from, .msg_namelen = 1000};
    EXACT("recvmsg(d, namelen 1000)", recvmsg(d, &m, 0));
    consumed += 10;
    note("  namelen after: %u", (unsigned)m.msg_namelen);
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_control = LOW_POINTER, .msg_controllen = 100};
    EXACT("recvmsg(d, control first page, controllen 100)", recvmsg(d, &m, 0));
    consumed += 10;
    note("  controllen after: %zu, flags after: 0x%x", (size_t)m.msg_controllen, (unsigned)m.msg_flags);
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control,
                        .msg_flags = -1};
    EXACT("recvmsg(d, flags in -1, MSG_CMSG_CLOEXEC)", recvmsg(d, &m, MSG_CMSG_CLOEXEC));
    consumed += 10;
    note("  controllen after: %zu, flags after: 0x%x", (size_t)m.msg_controllen, (unsigned)m.msg_flags);
    struct iovec null_one = {NULL, 10};
    m = (struct msghdr){.msg_iov = &null_one, .msg_iovlen = 1};
    EXACT("recvmsg(d, {NULL, 10})", recvmsg(d, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1};
    EXACT("recvmsg(h, nothing to read)", recvmsg(h, &m, 0));
    EXACT("recvmsg(listener)", recvmsg(l, &m, 0));
    next_byte(d, "  then", consumed);

    // write, send, sendto
    EXACT("write(-1)", write(-1, buffer, 10));
    EXACT("write(closed fd)", write(gone, buffer, 10));
    EXACT("write(h, NULL, 10)", write(h, NULL, 10));
    EXACT("write(h, first page, 10)", write(h, LOW_POINTER, 10));
    EXACT("write(h, kernel pointer, 10)", write(h, KERNEL_POINTER, 10));
    EXACT("write(h, NULL, 0)", write(h, NULL, 0));
    EXACT("write(h, buffer, 0)", write(h, buffer, 0));
    EXACT("write(h, buffer, SIZE_MAX)", write(h, buffer, SIZE_MAX));
    EXACT("write(h, buffer, SSIZE_MAX)", write(h, buffer, SSIZE_MAX));
    fill_pattern(buffer, 0, 8192);
    size_t sent = 0;
    EXACT("write(h, unaligned, 10)", write(h, buffer + 1, 10));
    sent += 10;
    EXACT("write(listener)", write(l, buffer, 10));
    EXACT("write(fresh)", write(fresh, buffer, 10));
    EXACT("write(fresh, buffer, 0)", write(fresh, buffer, 0));
    EXACT("send(-1)", send(-1, buffer, 10, 0));
    EXACT("send(/dev/null)", send(null, buffer, 10, 0));
    EXACT("send(h, NULL, 10, 0)", send(h, NULL, 10, 0));
    EXACT("send(h, kernel pointer, SIZE_MAX, 0)", send(h, KERNEL_POINTER, SIZE_MAX, 0));
    EXACT("send(h, NULL, 0, 0)", send(h, NULL, 0, 0));
    EXACT("send(h, unaligned, 10, MSG_NOSIGNAL)", send(h, buffer + 5, 10, MSG_NOSIGNAL));
    sent += 10;
    EXACT("send(listener, MSG_NOSIGNAL)", send(l, buffer, 10, MSG_NOSIGNAL));
    EXACT("send(fresh, MSG_NOSIGNAL)", send(fresh, buffer, 10, MSG_NOSIGNAL));
    EXACT("sendto(-1, kernel pointer, 10)", sendto(-1, KERNEL_POINTER, 10, 0, NULL, 0));
    EXACT("sendto(h, buffer, 10, 0, NULL, 16)", sendto(h, buffer, 10, 0, NULL, 16));
    sent += 10;
    struct sockaddr_in somewhere = address_of("192.0.2.1", 9);
    EXACT("sendto(h, buffer, 10, 0, &a, -1)", sendto(h, buffer, 10, 0, (struct sockaddr *)&somewhere, (socklen_t)-1));
    EXACT("sendto(h, buffer, 10, 0, &a, 200)", sendto(h, buffer, 10, 0, (struct sockaddr *)&somewhere, 200));
    EXACT("sendto(h, buffer, 10, 0, first page, 16)", sendto(h, buffer, 10, 0, LOW_POINTER, 16));
    EXACT("sendto(h, buffer, 10, 0, kernel pointer, 16)", sendto(h, buffer, 10, 0, KERNEL_POINTER, 16));
    EXACT("sendto(h, buffer, 10, 0, &a, 0)", sendto(h, buffer, 10, 0, (struct sockaddr *)&somewhere, 0));
    sent += 10;
    EXACT("sendto(h, buffer, 10, 0, elsewhere, 16)",
          sendto(h, buffer, 10, 0, (struct sockaddr *)&somewhere, sizeof somewhere));
    sent += 10;
    EXACT("sendto(h, NULL, 10, 0, elsewhere, 16)", sendto(h, NULL, 10, 0, (struct sockaddr *)&somewhere, 16));

    // writev
    for (int k = 0; k <= IOV_MAX; k++) v[k] = (struct iovec){buffer, 0};
    EXACT("writev(-1)", writev(-1, v, 1));
    EXACT("writev(h, NULL, 0)", writev(h, NULL, 0));
    EXACT("writev(h, NULL, 1)", writev(h, NULL, 1));
    EXACT("writev(h, v, -1)", writev(h, v, -1));
    EXACT("writev(h, v, IOV_MAX+1)", writev(h, v, IOV_MAX + 1));
    EXACT("writev(h, IOV_MAX empty buffers)", writev(h, v, IOV_MAX));
    v[0] = (struct iovec){NULL, 10};
    EXACT("writev(h, {NULL, 10}, 1)", writev(h, v, 1));
    v[0] = (struct iovec){buffer, 5};
    v[1] = (struct iovec){NULL, 10};
    EXACT("writev(h, {buffer, 5}, {NULL, 10})", writev(h, v, 2));
    v[0] = (struct iovec){buffer, SIZE_MAX};
    EXACT("writev(h, {buffer, SIZE_MAX}, 1)", writev(h, v, 1));
    v[0] = (struct iovec){buffer, (size_t)SSIZE_MAX};
    v[1] = (struct iovec){buffer, 1};
    EXACT("writev(h, {buffer, SSIZE_MAX}, {buffer, 1})", writev(h, v, 2));
    v[0] = (struct iovec){KERNEL_POINTER, 5};
    EXACT("writev(h, {kernel pointer, 5}, 1)", writev(h, v, 1));
    pair[0] = (struct iovec){buffer, 3};
    pair[1] = (struct iovec){buffer + 3, 4};
    memcpy(raw + 1, pair, sizeof pair);
    EXACT("writev(h, unaligned iovec array, 2)", writev(h, (struct iovec *)(raw + 1), 2));
    sent += 7;
    v[0] = (struct iovec){buffer, 3};
    EXACT("writev(fresh)", writev(fresh, v, 1));

    // sendmsg
    EXACT("sendmsg(-1, NULL)", sendmsg(-1, NULL, 0));
    EXACT("sendmsg(h, NULL)", sendmsg(h, NULL, 0));
    EXACT("sendmsg(h, kernel pointer)", sendmsg(h, KERNEL_POINTER, 0));
    m = (struct msghdr){.msg_iov = v, .msg_iovlen = IOV_MAX + 1};
    EXACT("sendmsg(h, iovlen IOV_MAX+1)", sendmsg(h, &m, 0));
    m = (struct msghdr){.msg_iov = v, .msg_iovlen = (size_t)-1};
    EXACT("sendmsg(h, iovlen -1)", sendmsg(h, &m, 0));
    m = (struct msghdr){.msg_iov = NULL, .msg_iovlen = 1};
    EXACT("sendmsg(h, iov NULL, iovlen 1)", sendmsg(h, &m, 0));
    one = (struct iovec){buffer, 10};
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = &somewhere, .msg_namelen = (socklen_t)-1};
    EXACT("sendmsg(h, namelen -1)", sendmsg(h, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = NULL, .msg_namelen = 16};
    EXACT("sendmsg(h, name NULL, namelen 16)", sendmsg(h, &m, 0));
    sent += 10;
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = KERNEL_POINTER, .msg_namelen = 16};
    EXACT("sendmsg(h, name kernel pointer, namelen 16)", sendmsg(h, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_name = &from, .msg_namelen = 1000};
    memset(&from, 0, sizeof from);
    EXACT("sendmsg(h, namelen 1000)", sendmsg(h, &m, 0));
    sent += 10;
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_control = NULL, .msg_controllen = 16};
    EXACT("sendmsg(h, control NULL, controllen 16)", sendmsg(h, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_control = control, .msg_controllen = (size_t)INT_MAX + 1};
    EXACT("sendmsg(h, controllen INT_MAX+1)", sendmsg(h, &m, 0));
    memset(control, 0, sizeof control);
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_control = control, .msg_controllen = 16};
    EXACT("sendmsg(h, control zeroed, controllen 16)", sendmsg(h, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_control = control, .msg_controllen = 8};
    EXACT("sendmsg(h, control zeroed, controllen 8)", sendmsg(h, &m, 0));
    sent += 10;
    struct cmsghdr *cmsg = (struct cmsghdr *)control;
    cmsg->cmsg_len = 1000;
    cmsg->cmsg_level = IPPROTO_IP;
    cmsg->cmsg_type = IP_TTL;
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(4)};
    EXACT("sendmsg(h, cmsg_len beyond controllen)", sendmsg(h, &m, 0));
    cmsg->cmsg_len = CMSG_LEN(4);
    EXACT("sendmsg(h, an IPPROTO_IP cmsg)", sendmsg(h, &m, 0));
    sent += 10;
    struct iovec null_ten = {NULL, 10};
    m = (struct msghdr){.msg_iov = &null_ten, .msg_iovlen = 1};
    EXACT("sendmsg(h, {NULL, 10})", sendmsg(h, &m, 0));
    m = (struct msghdr){.msg_iov = &one, .msg_iovlen = 1};
    EXACT("sendmsg(fresh, MSG_NOSIGNAL)", sendmsg(fresh, &m, MSG_NOSIGNAL));

    // sendfile, sendfile64
    char path[] = "/tmp/mtcp-preload-hostile.XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0, "mkstemp");
    unlink(path);
    write_all(file, buffer, 100);
    lseek(file, 0, SEEK_SET);
    int write_only = open("/dev/null", O_WRONLY);
    int pipes[2];
    CHECK(pipe(pipes) == 0, "pipe");
    off_t offset = 0;
    EXACT("sendfile(-1, file)", sendfile(-1, file, NULL, 10));
    EXACT("sendfile(h, -1)", sendfile(h, -1, NULL, 10));
    EXACT("sendfile(h, closed fd)", sendfile(h, gone, NULL, 10));
    EXACT("sendfile(h, write-only file)", sendfile(h, write_only, NULL, 10));
    EXACT("sendfile(h, file, NULL, 0)", sendfile(h, file, NULL, 0));
    EXACT("sendfile(h, file, NULL, SIZE_MAX)", sendfile(h, file, NULL, SIZE_MAX));
    offset = -1;
    EXACT("sendfile(h, file, &-1, 10)", sendfile(h, file, &offset, 10));
    note("  offset after: %ld", (long)offset);
    offset = 1;
    EXACT("sendfile(h, file, &1, SSIZE_MAX)", sendfile(h, file, &offset, SSIZE_MAX));
    offset = 1000;
    EXACT("sendfile(h, file, &1000, 10) beyond the end", sendfile(h, file, &offset, 10));
    note("  offset after: %ld", (long)offset);
    offset = 90;
    EXACT("sendfile(h, file, &90, SSIZE_MAX)", sendfile(h, file, &offset, SSIZE_MAX));
    EXACT("sendfile(h, file, &90, 1<<30)", sendfile(h, file, &offset, 1 << 30));
    sent += 10;
    note("  offset after: %ld, file position %ld", (long)offset, (long)lseek(file, 0, SEEK_CUR));
    offset = 0;
    EXACT("sendfile(h, pipe, &0, 10)", sendfile(h, pipes[0], &offset, 10));
    EXACT("sendfile(h, file, kernel pointer, 10)", sendfile(h, file, KERNEL_POINTER, 10));
    EXACT("sendfile(h, file, NULL, 10)", sendfile(h, file, NULL, 10));
    sent += 10;
    note("  file position %ld", (long)lseek(file, 0, SEEK_CUR));
    EXACT("sendfile(listener, file, NULL, 10)", sendfile(l, file, NULL, 10));
    note("  file position %ld", (long)lseek(file, 0, SEEK_CUR));
    EXACT("sendfile(fresh, file, NULL, 10)", sendfile(fresh, file, NULL, 10));
    EXACT("sendfile(/dev/null, socket d, NULL, 10)", sendfile(write_only, d, NULL, 10));
    EXACT("sendfile(h, socket d, NULL, 10)", sendfile(h, d, NULL, 10));
    EXACT("sendfile(h, listener, NULL, 10)", sendfile(h, l, NULL, 10));
    offset = -5;
    EXACT("sendfile64(h, file, &-5, 10)", sendfile64(h, file, &offset, 10));
    offset = 0;
    EXACT("sendfile64(h, file, &0, 10)", sendfile64(h, file, &offset, 10));
    sent += 10;

    // Everything the calls above queued reached the peer, and nothing else.
    close(h);
    long bytes = 0;
    CHECK(peer_saw_eof("data", 5000, &bytes), "the peer saw the end of h");
    note("the peer got exactly the bytes written: %s", bytes == (long)sent ? "yes" : "no");
    if (bytes != (long)sent) fprintf(stderr, "the peer got %ld bytes, %zu written\n", bytes, sent);
    close(file);
    close(write_only);
    close(pipes[0]);
    close(pipes[1]);
    close(fresh);
    close(d);
    close(l);
    close(null);
    free(buffer);
}

// --- epoll, poll, select. ---------------------------------------------------------------------

static void waiting(void) {
    int d = command("SEND 100");
    int h = command("HOLD waiting 0");
    int gone = closed_fd();
    int null = open("/dev/null", O_RDWR);
    int file_fd = open("/etc/hostname", O_RDONLY);
    if (file_fd < 0) file_fd = open("/etc/passwd", O_RDONLY);
    CHECK(file_fd >= 0, "open a regular file");
    wait_bytes(d, 100);
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = 7};
    struct epoll_event events[16];
    int fd;

    // epoll_create, epoll_create1
    EXACT("epoll_create(0)", epoll_create(0));
    EXACT("epoll_create(-1)", epoll_create(-1));
    EXACT("epoll_create1(-1)", epoll_create1(-1));
    EXACT("epoll_create1(0x1234)", epoll_create1(0x1234));
    fd = SHOW("epoll_create1(EPOLL_CLOEXEC)", epoll_create1(EPOLL_CLOEXEC));
    EXACT("  its F_GETFD", fcntl(fd, F_GETFD));
    close(fd);
    int ep = SHOW("epoll_create(1)", epoll_create(1));

    // epoll_ctl
    EXACT("epoll_ctl(ep, ADD, h, NULL)", epoll_ctl(ep, EPOLL_CTL_ADD, h, NULL));
    EXACT("epoll_ctl(ep, ADD, h, kernel pointer)", epoll_ctl(ep, EPOLL_CTL_ADD, h, KERNEL_POINTER));
    EXACT("epoll_ctl(ep, 99, h, NULL)", epoll_ctl(ep, 99, h, NULL));
    EXACT("epoll_ctl(ep, 99, h, &e)", epoll_ctl(ep, 99, h, &event));
    EXACT("epoll_ctl(ep, -1, h, &e)", epoll_ctl(ep, -1, h, &event));
    EXACT("epoll_ctl(-1, ADD, h, &e)", epoll_ctl(-1, EPOLL_CTL_ADD, h, &event));
    EXACT("epoll_ctl(-1, 99, h, &e)", epoll_ctl(-1, 99, h, &event));
    EXACT("epoll_ctl(closed fd, ADD, h, &e)", epoll_ctl(gone, EPOLL_CTL_ADD, h, &event));
    EXACT("epoll_ctl(1<<20, ADD, h, &e)", epoll_ctl(1 << 20, EPOLL_CTL_ADD, h, &event));
    EXACT("epoll_ctl(/dev/null, ADD, h, &e)", epoll_ctl(null, EPOLL_CTL_ADD, h, &event));
    EXACT("epoll_ctl(d, ADD, h, &e) (a socket as epfd)", epoll_ctl(d, EPOLL_CTL_ADD, h, &event));
    EXACT("epoll_ctl(h, ADD, h, &e)", epoll_ctl(h, EPOLL_CTL_ADD, h, &event));
    EXACT("epoll_ctl(ep, ADD, -1, &e)", epoll_ctl(ep, EPOLL_CTL_ADD, -1, &event));
    EXACT("epoll_ctl(ep, ADD, closed fd, &e)", epoll_ctl(ep, EPOLL_CTL_ADD, gone, &event));
    EXACT("epoll_ctl(ep, ADD, regular file, &e)", epoll_ctl(ep, EPOLL_CTL_ADD, file_fd, &event));
    EXACT("epoll_ctl(ep, ADD, ep, &e)", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &event));
    EXACT("epoll_ctl(ep, MOD, h, &e) not added", epoll_ctl(ep, EPOLL_CTL_MOD, h, &event));
    EXACT("epoll_ctl(ep, DEL, h, NULL) not added", epoll_ctl(ep, EPOLL_CTL_DEL, h, NULL));
    EXACT("epoll_ctl(ep, DEL, h, kernel pointer) not added", epoll_ctl(ep, EPOLL_CTL_DEL, h, KERNEL_POINTER));
    struct epoll_event odd = {.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, .data.u64 = 1};
    EXACT("epoll_ctl(ep, ADD, h, EXCLUSIVE|ONESHOT)", epoll_ctl(ep, EPOLL_CTL_ADD, h, &odd));
    odd.events = 0xffffffffu;
    EXACT("epoll_ctl(ep, ADD, h, every bit)", epoll_ctl(ep, EPOLL_CTL_ADD, h, &odd));
    odd.events = EPOLLIN | EPOLLEXCLUSIVE;
    EXACT("epoll_ctl(ep, ADD, h, EXCLUSIVE)", epoll_ctl(ep, EPOLL_CTL_ADD, h, &odd));
    EXACT("epoll_ctl(ep, ADD, h, &e) again", epoll_ctl(ep, EPOLL_CTL_ADD, h, &event));
    EXACT("epoll_ctl(ep, MOD, h, EXCLUSIVE)", epoll_ctl(ep, EPOLL_CTL_MOD, h, &odd));
    EXACT("epoll_ctl(ep, MOD, h, &e) (added EXCLUSIVE)", epoll_ctl(ep, EPOLL_CTL_MOD, h, &event));
    EXACT("epoll_ctl(ep, DEL, h, NULL)", epoll_ctl(ep, EPOLL_CTL_DEL, h, NULL));
    char unaligned_event[sizeof event + 1];
    memcpy(unaligned_event + 1, &event, sizeof event);
    EXACT("epoll_ctl(ep, ADD, h, unaligned &e)", epoll_ctl(ep, EPOLL_CTL_ADD, h, (struct epoll_event *)(unaligned_event + 1)));
    EXACT("epoll_ctl(ep, MOD, h, NULL)", epoll_ctl(ep, EPOLL_CTL_MOD, h, NULL));

    // epoll_wait, epoll_pwait: h is registered and has nothing to read.
    EXACT("epoll_wait(ep, events, 0, 0)", epoll_wait(ep, events, 0, 0));
    EXACT("epoll_wait(ep, events, -1, 0)", epoll_wait(ep, events, -1, 0));
    EXACT("epoll_wait(ep, events, INT_MAX, 0)", epoll_wait(ep, events, INT_MAX, 0));
    EXACT("epoll_wait(ep, events, EP_MAX_EVENTS+1, 0)", epoll_wait(ep, events, EP_MAX_EVENTS + 1, 0));
    EXACT("epoll_wait(-1, NULL, 0, 0)", epoll_wait(-1, NULL, 0, 0));
    EXACT("epoll_wait(-1, events, 16, 0)", epoll_wait(-1, events, 16, 0));
    EXACT("epoll_wait(closed fd, events, 16, 0)", epoll_wait(gone, events, 16, 0));
    EXACT("epoll_wait(/dev/null, events, 16, 0)", epoll_wait(null, events, 16, 0));
    EXACT("epoll_wait(h, events, 16, 0) (a socket)", epoll_wait(h, events, 16, 0));
    EXACT("epoll_wait(ep, NULL, 16, 0) nothing ready", epoll_wait(ep, NULL, 16, 0));
    EXACT("epoll_wait(ep, kernel pointer, 16, 0)", epoll_wait(ep, KERNEL_POINTER, 16, 0));
    // EP_MAX_EVENTS events from a heap buffer: the address space has room for them after it.
    struct epoll_event *heap_events = malloc(16 * sizeof(struct epoll_event));
    EXACT("epoll_wait(ep, events, EP_MAX_EVENTS, 0) nothing ready", epoll_wait(ep, heap_events, EP_MAX_EVENTS, 0));
    EXACT("epoll_pwait(ep, NULL, 16, 0, NULL) nothing ready", epoll_pwait(ep, NULL, 16, 0, NULL));
    EXACT("epoll_wait(ep, events, 16, 1) nothing ready", epoll_wait(ep, events, 16, 1));
    // d is readable.
    EXACT("epoll_ctl(ep, ADD, d, &e)", epoll_ctl(ep, EPOLL_CTL_ADD, d, &event));
    EXACT("epoll_wait(ep, NULL, 16, 0) d ready", epoll_wait(ep, NULL, 16, 0));
    EXACT("epoll_wait(ep, first page, 16, 0) d ready", epoll_wait(ep, LOW_POINTER, 16, 0));
    EXACT("epoll_pwait(ep, NULL, 16, 0, NULL) d ready", epoll_pwait(ep, NULL, 16, 0, NULL));
    char unaligned_events[sizeof events + 1];
    EXACT("epoll_wait(ep, unaligned, 16, 0) d ready", epoll_wait(ep, (struct epoll_event *)(unaligned_events + 1), 16, 0));
    memcpy(events, unaligned_events + 1, sizeof events[0]);
    note("  data %llu, EPOLLIN %s", (unsigned long long)events[0].data.u64, events[0].events & EPOLLIN ? "yes" : "no");
    EXACT("epoll_wait(ep, events, EP_MAX_EVENTS, 0) d ready", epoll_wait(ep, heap_events, EP_MAX_EVENTS, 0));
    EXACT("epoll_pwait(ep, events, 16, 0, kernel pointer) d ready", epoll_pwait(ep, events, 16, 0, KERNEL_POINTER));
    sigset_t empty;
    sigemptyset(&empty);
    EXACT("epoll_pwait(ep, events, 16, 0, &empty) d ready", epoll_pwait(ep, events, 16, 0, &empty));
    EXACT("epoll_wait(ep, events, 1, -5) d ready", epoll_wait(ep, events, 1, -5));
    // A closed epoll fd, and its number reused.
    EXACT("close(ep)", close(ep));
    EXACT("epoll_wait(closed ep)", epoll_wait(ep, events, 16, 0));
    EXACT("epoll_ctl(closed ep, ADD, d, &e)", epoll_ctl(ep, EPOLL_CTL_ADD, d, &event));
    EXACT("epoll_ctl(closed ep, DEL, d, NULL)", epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL));
    EXACT("close(ep) again", close(ep));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    note("a socket takes the closed epoll fd's number: %s", s == ep ? "yes" : "no");
    EXACT("epoll_wait(that socket)", epoll_wait(s, events, 16, 0));
    EXACT("epoll_ctl(that socket, ADD, d, &e)", epoll_ctl(s, EPOLL_CTL_ADD, d, &event));
    close(s);
    ep = epoll_create1(0);
    EXACT("epoll_ctl(new ep, ADD, d, &e)", epoll_ctl(ep, EPOLL_CTL_ADD, d, &event));
    EXACT("epoll_wait(new ep, events, 16, 0)", epoll_wait(ep, events, 16, 0));
    // An epoll fd in the calls of sockets: each answers as Linux does for a non-socket.
    uint8_t scratch[16];
    EXACT("read(ep)", read(ep, scratch, sizeof scratch));
    EXACT("write(ep)", write(ep, scratch, sizeof scratch));
    EXACT("recv(ep)", recv(ep, scratch, sizeof scratch, 0));
    EXACT("send(ep)", send(ep, scratch, sizeof scratch, 0));
    struct iovec iov = {scratch, sizeof scratch};
    EXACT("readv(ep)", readv(ep, &iov, 1));
    EXACT("writev(ep)", writev(ep, &iov, 1));
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    EXACT("recvmsg(ep)", recvmsg(ep, &m, 0));
    EXACT("sendmsg(ep)", sendmsg(ep, &m, 0));
    struct sockaddr_storage name;
    socklen_t length = sizeof name;
    EXACT("getsockname(ep)", getsockname(ep, (struct sockaddr *)&name, &length));
    EXACT("getpeername(ep)", getpeername(ep, (struct sockaddr *)&name, &length));
    int one = 1;
    EXACT("setsockopt(ep)", setsockopt(ep, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    length = sizeof one;
    EXACT("getsockopt(ep)", getsockopt(ep, SOL_SOCKET, SO_TYPE, &one, &length));
    EXACT("shutdown(ep)", shutdown(ep, SHUT_RDWR));
    EXACT("listen(ep)", listen(ep, 5));
    EXACT("accept(ep)", accept(ep, NULL, NULL));
    struct sockaddr_in a = stack_address(0);
    EXACT("bind(ep)", bind(ep, (struct sockaddr *)&a, sizeof a));
    EXACT("connect(ep)", connect(ep, (struct sockaddr *)&a, sizeof a));
    EXACT("sendfile(ep, file)", sendfile(ep, file_fd, NULL, 10));
    EXACT("ioctl(ep, FIONREAD)", ioctl(ep, FIONREAD, &one));
    EXACT("fcntl(ep, F_GETFL)", fcntl(ep, F_GETFL));
    EXACT("fcntl(ep, 9999)", fcntl(ep, 9999));

    // poll, ppoll
    struct rlimit limit;
    CHECK(getrlimit(RLIMIT_NOFILE, &limit) == 0, "getrlimit");
    struct pollfd fds[4] = {{.fd = d, .events = POLLIN}, {.fd = -1, .events = POLLIN}, {.fd = gone, .events = POLLIN},
                            {.fd = 1 << 20, .events = POLLIN}};
    EXACT("poll(NULL, 0, 0)", poll(NULL, 0, 0));
    EXACT("poll(NULL, 1, 0)", poll(NULL, 1, 0));
    EXACT("poll(kernel pointer, 1, 0)", poll(KERNEL_POINTER, 1, 0));
    EXACT("poll(fds, RLIMIT_NOFILE+1, 0)", poll(fds, (nfds_t)limit.rlim_cur + 1, 0));
    EXACT("poll(fds, -1, 0)", poll(fds, (nfds_t)-1, 0));
    EXACT("poll(fds, 1<<40, 0)", poll(fds, (nfds_t)1 << 40, 0));
    EXACT("poll({d, -1, closed fd, 1<<20}, 4, 0)", poll(fds, 4, 0));
    note("  revents 0x%x 0x%x 0x%x 0x%x", fds[0].revents, fds[1].revents, fds[2].revents, fds[3].revents);
    struct pollfd hold = {.fd = h, .events = POLLIN};
    EXACT("poll({h}, 1, 0) h not ready", poll(&hold, 1, 0));
    char unaligned_fds[sizeof fds + 1];
    memcpy(unaligned_fds + 1, fds, sizeof fds);
    EXACT("poll(unaligned, 4, 0)", poll((struct pollfd *)(unaligned_fds + 1), 4, 0));
    memcpy(fds, unaligned_fds + 1, sizeof fds);
    note("  revents 0x%x 0x%x 0x%x 0x%x", fds[0].revents, fds[1].revents, fds[2].revents, fds[3].revents);
    struct pollfd mixed[2] = {{.fd = h, .events = POLLIN}, {.fd = gone, .events = POLLIN}};
    EXACT("poll({h, closed fd}, 2, 100)", poll(mixed, 2, 100));
    note("  revents 0x%x 0x%x", mixed[0].revents, mixed[1].revents);
    struct timespec bad = {.tv_sec = -1, .tv_nsec = 0};
    EXACT("ppoll({h}, 1, {-1, 0})", ppoll(&hold, 1, &bad, NULL));
    bad = (struct timespec){.tv_sec = 0, .tv_nsec = 1000000000};
    EXACT("ppoll({h}, 1, {0, 1e9})", ppoll(&hold, 1, &bad, NULL));
    bad = (struct timespec){.tv_sec = 0, .tv_nsec = -1};
    EXACT("ppoll({d}, 1, {0, -1})", ppoll(fds, 1, &bad, NULL));
    // Not ppoll with a kernel pointer for the timeout: glibc copies the timespec itself.
    EXACT("ppoll({h}, 1, &0, kernel pointer)", ppoll(&hold, 1, &(struct timespec){0, 0}, KERNEL_POINTER));
    EXACT("ppoll(NULL, 1, &0)", ppoll(NULL, 1, &(struct timespec){0, 0}, NULL));
    EXACT("ppoll(fds, RLIMIT_NOFILE+1, &0)", ppoll(fds, (nfds_t)limit.rlim_cur + 1, &(struct timespec){0, 0}, NULL));
    EXACT("__poll_chk({d}, 1, 0, 8)", __poll_chk(fds, 1, 0, sizeof fds[0]));
    EXACT("__poll_chk(NULL, 0, 0, 0)", __poll_chk(NULL, 0, 0, 0));
    bad = (struct timespec){.tv_sec = -1, .tv_nsec = 0};
    EXACT("__ppoll_chk({h}, 1, {-1, 0}, NULL, 8)", __ppoll_chk(&hold, 1, &bad, NULL, sizeof hold));

    // select, pselect
    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_SET(h, &readable);
    struct timeval tv = {.tv_sec = -1, .tv_usec = 0};
    EXACT("select(h+1, {h}, tv {-1, 0})", select(h + 1, &readable, NULL, NULL, &tv));
    FD_ZERO(&readable);
    FD_SET(h, &readable);
    tv = (struct timeval){.tv_sec = 0, .tv_usec = -1};
    EXACT("select(h+1, {h}, tv {0, -1})", select(h + 1, &readable, NULL, NULL, &tv));
    FD_ZERO(&readable);
    FD_SET(h, &readable);
    tv = (struct timeval){.tv_sec = 0, .tv_usec = 2000000};
    FD_ZERO(&writable);
    FD_SET(h, &writable);
    EXACT("select(h+1, {h}, {h}, tv {0, 2000000})", select(h + 1, &readable, &writable, NULL, &tv));
    note("  readable %s, writable %s", FD_ISSET(h, &readable) ? "yes" : "no", FD_ISSET(h, &writable) ? "yes" : "no");
    EXACT("select(-1, NULL, NULL, NULL, &0)", select(-1, NULL, NULL, NULL, &(struct timeval){0, 0}));
    EXACT("select(INT_MAX, NULL, NULL, NULL, &0)", select(INT_MAX, NULL, NULL, NULL, &(struct timeval){0, 0}));
    FD_ZERO(&readable);
    FD_SET(h, &readable);
    FD_SET(gone, &readable);
    int top = (h > gone ? h : gone) + 1;
    EXACT("select({h, closed fd}, &0)", select(top, &readable, NULL, NULL, &(struct timeval){0, 0}));
    FD_ZERO(&readable);
    FD_SET(d, &readable);
    EXACT("select(d+1, {d}, NULL timeout) > 0", select(d + 1, &readable, NULL, NULL, NULL) > 0);
    EXACT("select(d+1, kernel pointer, &0)", select(d + 1, KERNEL_POINTER, NULL, NULL, &(struct timeval){0, 0}));
    FD_ZERO(&readable);
    FD_SET(d, &readable);
    EXACT("select(d+1, {d}, kernel pointer, &0)", select(d + 1, &readable, KERNEL_POINTER, NULL, &(struct timeval){0, 0}));
    FD_ZERO(&readable);
    FD_SET(d, &readable);
    EXACT("select(INT_MAX, {d}, &0)", select(INT_MAX, &readable, NULL, NULL, &(struct timeval){0, 0}));
    note("  d readable: %s", FD_ISSET(d, &readable) ? "yes" : "no");
    FD_ZERO(&readable);
    FD_SET(h, &readable);
    struct timespec ts = {.tv_sec = -1, .tv_nsec = 0};
    EXACT("pselect(h+1, {h}, {-1, 0})", pselect(h + 1, &readable, NULL, NULL, &ts, NULL));
    FD_ZERO(&readable);
    FD_SET(h, &readable);
    ts = (struct timespec){.tv_sec = 0, .tv_nsec = 1000000000};
    EXACT("pselect(h+1, {h}, {0, 1e9})", pselect(h + 1, &readable, NULL, NULL, &ts, NULL));
    // Not pselect with a kernel pointer for the timeout: glibc copies the timespec itself.
    FD_ZERO(&readable);
    FD_SET(d, &readable);
    EXACT("pselect(-5, {d}, &0)", pselect(-5, &readable, NULL, NULL, &(struct timespec){0, 0}, NULL));
    EXACT("pselect(d+1, {d}, &0)", pselect(d + 1, &readable, NULL, NULL, &(struct timespec){0, 0}, NULL));
    FD_ZERO(&readable);
    FD_SET(d, &readable);
    EXACT("pselect(d+1, {d}, &0, kernel pointer mask)",
          pselect(d + 1, &readable, NULL, NULL, &(struct timespec){0, 0}, KERNEL_POINTER));

    free(heap_events);
    close(ep);
    close(file_fd);
    close(null);
    close(h);
    close(d);
}

// --- Descriptors closed and reused by one thread while another blocks on them. -------------
//
// Linux keeps a socket alive while a call on it is under way: a recv, accept or epoll_wait
// blocked on an fd another thread closes goes on waiting on the old file (here until its
// timeout). The library ends such a call at once (EBADF) when it next looks at the closed
// descriptor; both ways the call returns. So these cases show only that each blocked call
// returned in bounded time and never handed over another connection's bytes, not the result
// (printed for the record without "| ").

struct blocked {
    int fd;
    int kind;  // 0 recv, 1 accept, 2 epoll_wait
    long result;
    int error;
    int started;
    uint8_t bytes[64];
};

static void *block_in_call(void *argument) {
    struct blocked *b = argument;
    struct epoll_event events[4];
    __atomic_store_n(&b->started, 1, __ATOMIC_RELEASE);
    errno = 0;
    if (b->kind == 0) b->result = recv(b->fd, b->bytes, sizeof b->bytes, 0);
    if (b->kind == 1) b->result = accept(b->fd, NULL, NULL);
    if (b->kind == 2) b->result = epoll_wait(b->fd, events, 4, 1500);
    b->error = errno;
    return NULL;
}

static void set_timeout(int fd, int ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0, "SO_RCVTIMEO");
}

/// Starts `b` in a thread, closes its fd after 200 ms, and says whether it returned within 5 s.
static void close_under(struct blocked *b, const char *what, void (*meanwhile)(void)) {
    pthread_t thread;
    b->result = -2;
    b->started = 0;
    CHECK(pthread_create(&thread, NULL, block_in_call, b) == 0, "pthread_create");
    // Under load a thread may start late: the close must come after the call began.
    while (!__atomic_load_n(&b->started, __ATOMIC_ACQUIRE)) usleep(1000);
    usleep(200000);
    int64_t t0 = now_ms();
    EXACT(what, close(b->fd));
    if (meanwhile) meanwhile();
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 5;
    int joined = pthread_timedjoin_np(thread, NULL, &end);
    note("  the blocked call returned within 5 s: %s", joined == 0 ? "yes" : "no");
    printf("  (it returned %ld, errno %s, after %lld ms)\n", b->result, errno_name(b->error),
           (long long)(now_ms() - t0));
    fflush(stdout);
    CHECK(joined == 0, "the blocked call returned");
}

static int reused_fd = -1;
static void reuse_number(void) {
    reused_fd = command("SEND 10");
    wait_bytes(reused_fd, 10);
}

static void threads(void) {
    struct blocked b;
    memset(&b, 0, sizeof b);

    b.fd = command("HOLD threads-recv 0");
    b.kind = 0;
    set_timeout(b.fd, 1500);
    close_under(&b, "close(c) while another thread blocks in recv(c)", NULL);

    int port;
    b.fd = stack_listener(&port);
    b.kind = 1;
    set_nonblocking(b.fd, 0);
    set_timeout(b.fd, 1500);
    close_under(&b, "close(l) while another thread blocks in accept(l)", NULL);

    int h = command("HOLD threads-epoll 0");
    b.fd = epoll_create1(0);
    b.kind = 2;
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = 1};
    CHECK(epoll_ctl(b.fd, EPOLL_CTL_ADD, h, &event) == 0, "epoll_ctl");
    close_under(&b, "close(ep) while another thread blocks in epoll_wait(ep)", NULL);
    close(h);

    // The closed number taken at once by a new connection with bytes waiting: the blocked
    // recv must not return them (they are the new connection's).
    b.fd = command("HOLD threads-reuse 0");
    int number = b.fd;
    b.kind = 0;
    set_timeout(b.fd, 1500);
    memset(b.bytes, 0, sizeof b.bytes);
    close_under(&b, "close(c) while another thread blocks in recv(c), the number reused", reuse_number);
    note("  the new connection took the number: %s", reused_fd == number ? "yes" : "no");
    note("  the blocked recv returned the new connection's bytes: %s",
         b.result > 0 && is_pattern(b.bytes, 0, (size_t)b.result) ? "yes" : "no");
    uint8_t mine[10];
    EXACT("  read(new connection, 10)", read(reused_fd, mine, sizeof mine));
    note("  its own bytes: %s", is_pattern(mine, 0, sizeof mine) ? "yes" : "no");
    close(reused_fd);

    // fork: the child's copy of the table closes its descriptors (and once more).
    int c = command("HOLD threads-fork 0");
    pid_t child = fork();
    if (child == 0) {
        int ok = close(c) == 0 && close(c) == -1 && errno == EBADF;
        _exit(ok ? 0 : 1);
    }
    show("fork()", child, errno, 0);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child, "waitpid");
    note("  the child closed its copy once and then got EBADF: %s",
         WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
    EXACT("  the parent's getpeername(c)",
          getpeername(c, (struct sockaddr *)&(struct sockaddr_storage){0}, &(socklen_t){128}));
    close(c);
}

static const struct test_entry cases[] = {
    {"hostile-sockets", sockets},
    {"hostile-data", data},
    {"hostile-wait", waiting},
    {"hostile-threads", threads},
};
RUN_CASES(cases)
