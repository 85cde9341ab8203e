// Helpers shared by the preload test programs: checks that end the program with a message,
// the peer's command protocol (tests/preload/peer.py), the byte pattern and bounded waits.
// Each program takes the case name as its first argument; PEER_ADDR, PEER_PORT (the peer's
// control port) and STACK_ADDR come from the environment.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *test_case = "?";

static void fail_at(int line, const char *format, ...) {
    int saved = errno;
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "FAIL %s (line %d): ", test_case, line);
    vfprintf(stderr, format, arguments);
    fprintf(stderr, " [errno %d %s]\n", saved, strerror(saved));
    va_end(arguments);
    fflush(stderr);
    exit(1);
}

// CHECK(condition, "what was expected", ...): the program ends with status 1 when false.
#define CHECK(condition, ...)                              \
    do {                                                   \
        if (!(condition)) fail_at(__LINE__, __VA_ARGS__);  \
    } while (0)

static inline uint8_t pattern_byte(size_t i) { return (uint8_t)((i * 31 + 7) & 0xff); }

static void fill_pattern(uint8_t *buffer, size_t offset, size_t count) {
    for (size_t i = 0; i < count; i++) buffer[i] = pattern_byte(offset + i);
}

static int is_pattern(const uint8_t *buffer, size_t offset, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (buffer[i] != pattern_byte(offset + i)) return 0;
    return 1;
}

static uint32_t adler32(uint32_t value, const uint8_t *data, size_t count) {
    uint32_t a = value & 0xffff, b = value >> 16;
    for (size_t i = 0; i < count; i++) {
        a = (a + data[i]) % 65521;
        b = (b + a) % 65521;
    }
    return (b << 16) | a;
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *env(const char *name) {
    const char *value = getenv(name);
    if (value == NULL || *value == '\0') {
        fprintf(stderr, "FAIL %s: %s is not set\n", test_case, name);
        _exit(2);
    }
    return value;
}

static struct sockaddr_in address_of(const char *ip, int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
        fprintf(stderr, "FAIL %s: bad address %s\n", test_case, ip);
        _exit(2);
    }
    return a;
}

static struct sockaddr_in peer_address(void) { return address_of(env("PEER_ADDR"), atoi(env("PEER_PORT"))); }

/// Waits (bounded) until fd has one of events; returns revents, 0 on timeout.
static short wait_for(int fd, short events, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = events};
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - now_ms());
        int n = poll(&p, 1, left < 0 ? 0 : left);
        if (n > 0) return p.revents;
        if (n == 0) return 0;
        if (errno != EINTR) return 0;
    }
}

static void write_all(int fd, const void *data, size_t count) {
    const uint8_t *p = data;
    while (count > 0) {
        ssize_t n = write(fd, p, count);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            CHECK(wait_for(fd, POLLOUT, 5000) & POLLOUT, "fd %d writable within 5 s", fd);
            continue;
        }
        CHECK(n > 0, "write of %zu bytes to fd %d", count, fd);
        p += n;
        count -= (size_t)n;
    }
}

/// Reads exactly count bytes within timeout_ms (the fd may be blocking or not); the number
/// read, fewer only at end of stream.
static size_t read_exact(int fd, void *buffer, size_t count, int timeout_ms) {
    uint8_t *p = buffer;
    size_t got = 0;
    int64_t end = now_ms() + timeout_ms;
    while (got < count) {
        int left = (int)(end - now_ms());
        CHECK(left > 0, "%zu bytes from fd %d within %d ms (got %zu)", count, fd, timeout_ms, got);
        short revents = wait_for(fd, POLLIN, left);
        CHECK(revents != 0, "fd %d readable within %d ms (got %zu of %zu)", fd, timeout_ms, got, count);
        ssize_t n = read(fd, p + got, count - got);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        CHECK(n >= 0, "read from fd %d", fd);
        if (n == 0) break;
        got += (size_t)n;
    }
    return got;
}

/// A blocking TCP connection to the peer's control port carrying one command line.
static int command(const char *format, ...) {
    char line[256];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(line, sizeof line - 1, format, arguments);
    va_end(arguments);
    strcat(line, "\n");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket()");
    struct sockaddr_in peer = peer_address();
    CHECK(connect(fd, (struct sockaddr *)&peer, sizeof peer) == 0, "connect to the peer for '%s'", line);
    write_all(fd, line, strlen(line));
    return fd;
}

/// Reads one reply line (bounded) from a command connection.
static void reply_line(int fd, char *line, size_t size, int timeout_ms) {
    size_t n = 0;
    int64_t end = now_ms() + timeout_ms;
    while (n + 1 < size) {
        int left = (int)(end - now_ms());
        CHECK(left > 0 && (wait_for(fd, POLLIN, left) & (POLLIN | POLLHUP)), "a reply line within %d ms",
              timeout_ms);
        ssize_t r = read(fd, line + n, 1);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        CHECK(r == 1, "a reply line (got '%.*s')", (int)n, line);
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
}

/// Asks the peer whether connection TAG has seen EOF within ms: 1 EOF, 0 still open.
static int peer_saw_eof(const char *tag, int ms, long *bytes) {
    int fd = command("WAITEOF %s %d", tag, ms);
    char line[64];
    reply_line(fd, line, sizeof line, ms + 3000);
    close(fd);
    long n = 0;
    int eof = strncmp(line, "EOF", 3) == 0;
    CHECK(eof || strncmp(line, "OPEN", 4) == 0, "WAITEOF reply (got '%s')", line);
    sscanf(line + (eof ? 3 : 4), "%ld", &n);
    if (bytes) *bytes = n;
    return eof;
}

/// A listener on 0.0.0.0:port (0: any), blocking; its port in *bound.
static int listener(int port, int *bound) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0, "socket() for a listener");
    int one = 1;
    CHECK(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    struct sockaddr_in any = address_of("0.0.0.0", port);
    CHECK(bind(fd, (struct sockaddr *)&any, sizeof any) == 0, "bind 0.0.0.0:%d", port);
    CHECK(listen(fd, 16) == 0, "listen");
    struct sockaddr_in local;
    socklen_t length = sizeof local;
    CHECK(getsockname(fd, (struct sockaddr *)&local, &length) == 0, "getsockname of the listener");
    *bound = ntohs(local.sin_port);
    CHECK(*bound != 0, "a bound port");
    return fd;
}

static void set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    CHECK(flags >= 0, "F_GETFL");
    CHECK(fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) == 0, "F_SETFL");
}

/// Reads what is there without blocking (fd non-blocking or not): bytes read, -1 EAGAIN.
static ssize_t read_now(int fd, void *buffer, size_t count) {
    ssize_t n = recv(fd, buffer, count, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    CHECK(n >= 0, "recv(MSG_DONTWAIT) from fd %d", fd);
    return n;
}

typedef void (*case_function)(void);
struct test_entry {
    const char *name;
    case_function run;
};

/// main for a program of cases: runs argv[1], prints "ok CASE" and exits 0 when it returns.
static int run_case(int argc, char **argv, const struct test_entry *entries, size_t count) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: %s CASE\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(entries[i].name, argv[1]) == 0) {
            test_case = entries[i].name;
            entries[i].run();
            printf("ok %s\n", test_case);
            fflush(stdout);
            return 0;
        }
    }
    fprintf(stderr, "%s: no case %s\n", argv[0], argv[1]);
    return 2;
}

#define RUN_CASES(entries) \
    int main(int argc, char **argv) { return run_case(argc, argv, entries, sizeof entries / sizeof entries[0]); }
