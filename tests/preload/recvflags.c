// Case 10: recv flags, scatter/gather calls, sendfile, and writes after the peer's reset.
#include "lib.h"
#include <sys/sendfile.h>

static void dont_wait(void) {
    int s = command("HOLD dw 0");
    char c;
    int64_t t0 = now_ms();
    ssize_t n = recv(s, &c, 1, MSG_DONTWAIT);
    CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "MSG_DONTWAIT on a blocking socket: EAGAIN");
    CHECK(now_ms() - t0 < 100, "at once");
    CHECK(!(fcntl(s, F_GETFL) & O_NONBLOCK), "the socket stays blocking");
    CHECK(send(s, "ab", 2, MSG_DONTWAIT) == 2, "send(MSG_DONTWAIT) with room");
    close(s);
    long bytes = 0;
    CHECK(peer_saw_eof("dw", 3000, &bytes) && bytes == 2, "the peer got 2 bytes");
}

static void wait_all(void) {
    int s = command("CHUNKS 4 1000 100");
    uint8_t buffer[4000];
    int64_t t0 = now_ms();
    ssize_t n = recv(s, buffer, sizeof buffer, MSG_WAITALL);
    CHECK(n == 4000, "MSG_WAITALL fills 4000 bytes sent in 4 chunks (got %zd)", n);
    CHECK(now_ms() - t0 >= 250, "across the chunks");
    CHECK(is_pattern(buffer, 0, 4000), "the pattern");
    close(s);
}

static void peek(void) {
    int s = command("SEND 100");
    CHECK(wait_for(s, POLLIN, 3000) & POLLIN, "readable");
    uint8_t buffer[100];
    ssize_t n = recv(s, buffer, 50, MSG_PEEK);
    CHECK(n == 50 && is_pattern(buffer, 0, 50), "MSG_PEEK returns the first 50 bytes (got %zd)", n);
    n = recv(s, buffer, 10, MSG_PEEK);
    CHECK(n == 10 && is_pattern(buffer, 0, 10), "and again (got %zd)", n);
    CHECK(read_exact(s, buffer, 100, 3000) == 100 && is_pattern(buffer, 0, 100), "read gets them all from byte 0");
    close(s);
}

static void vectors(void) {
    int s = command("ECHO");
    uint8_t out[2015], in[2015];
    fill_pattern(out, 0, sizeof out);
    struct iovec w[3] = {{out, 10}, {out + 10, 2000}, {out + 2010, 5}};
    CHECK(writev(s, w, 3) == 2015, "writev of 3 iovecs");
    memset(in, 0, sizeof in);
    struct iovec r[3] = {{in, 7}, {in + 7, 1500}, {in + 1507, 508}};
    struct msghdr m = {.msg_iov = r, .msg_iovlen = 3};
    ssize_t n = recvmsg(s, &m, MSG_WAITALL);
    CHECK(n == 2015 && memcmp(in, out, sizeof out) == 0, "recvmsg(MSG_WAITALL) into 3 iovecs (got %zd)", n);
    struct iovec w2[4] = {{out, 1}, {out + 1, 0}, {out + 1, 999}, {out + 1000, 1015}};
    struct msghdr sm = {.msg_iov = w2, .msg_iovlen = 4};
    CHECK(sendmsg(s, &sm, 0) == 2015, "sendmsg of 4 iovecs (one empty)");
    memset(in, 0, sizeof in);
    size_t got = 0;
    int64_t end = now_ms() + 3000;
    while (got < sizeof in) {
        CHECK(now_ms() < end && (wait_for(s, POLLIN, 3000) & POLLIN), "the echo within 3 s (%zu)", got);
        // readv into two halves, continuing where the last call stopped.
        size_t half = sizeof in / 2;
        struct iovec v[2];
        int count = 0;
        if (got < half) v[count++] = (struct iovec){in + got, half - got};
        size_t second = got > half ? got : half;
        v[count++] = (struct iovec){in + second, sizeof in - second};
        n = readv(s, v, count);
        CHECK(n > 0, "readv");
        got += (size_t)n;
    }
    CHECK(memcmp(in, out, sizeof out) == 0, "readv gets the sendmsg bytes in order");
    close(s);
}

static void send_file(void) {
    char path[] = "/tmp/mtcp-preload-sendfile.XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0, "mkstemp");
    unlink(path);
    size_t size = (1 << 20) + 123;
    uint8_t *data = malloc(size);
    CHECK(data != NULL, "malloc");
    fill_pattern(data, 0, size);
    CHECK(write(f, data, size) == (ssize_t)size, "write the file");
    CHECK(lseek(f, 0, SEEK_SET) == 0, "rewind");
    int s = command("SINK");
    size_t sent = 0;
    while (sent < size) {
        ssize_t n = sendfile(s, f, NULL, size - sent);
        CHECK(n > 0, "sendfile without offset (after %zu)", sent);
        sent += (size_t)n;
    }
    CHECK(lseek(f, 0, SEEK_CUR) == (off_t)size, "the file position advanced to the end");
    off_t offset = 1000;
    size_t more = 0;
    while (more < 5000) {
        ssize_t n = sendfile(s, f, &offset, 5000 - more);
        CHECK(n > 0, "sendfile with an offset");
        more += (size_t)n;
    }
    CHECK(offset == 6000 && lseek(f, 0, SEEK_CUR) == (off_t)size, "offset advanced, file position kept");
    CHECK(shutdown(s, SHUT_WR) == 0, "shutdown(SHUT_WR)");
    char line[64];
    reply_line(s, line, sizeof line, 10000);
    unsigned long count = 0, sum = 0;
    CHECK(sscanf(line, "%lu %lu", &count, &sum) == 2, "SINK reply '%s'", line);
    uint32_t expected = adler32(adler32(1, data, size), data + 1000, 5000);
    CHECK(count == size + 5000 && sum == expected, "byte-exact: %zu bytes, sum %u (got '%s')", size + 5000, expected,
          line);
    close(s);
    free(data);
}

static volatile sig_atomic_t pipes;
static void on_pipe(int signal) {
    (void)signal;
    pipes++;
}

static void broken_pipe(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_pipe;
    sigemptyset(&action.sa_mask);
    CHECK(sigaction(SIGPIPE, &action, NULL) == 0, "sigaction SIGPIPE");
    for (int variant = 0; variant < 2; variant++) {
        int flags = variant == 0 ? 0 : MSG_NOSIGNAL;
        int s = command("RESET 0");
        CHECK(wait_for(s, POLLIN, 3000) & (POLLHUP | POLLERR), "the reset arrives");
        int before = pipes, epipes = 0;
        for (int i = 0; i < 3; i++) {
            ssize_t n = send(s, "x", 1, flags);
            CHECK(n < 0 && (errno == EPIPE || (i == 0 && errno == ECONNRESET)),
                  "send %d after the reset fails with EPIPE (the first may say ECONNRESET)", i);
            if (errno == EPIPE) epipes++;
        }
        if (variant == 0) {
            CHECK(pipes - before == epipes, "one SIGPIPE per EPIPE (%d signals, %d EPIPE)", pipes - before, epipes);
        } else {
            CHECK(pipes == before, "MSG_NOSIGNAL: no SIGPIPE (%d)", pipes - before);
        }
        close(s);
    }
    // write() has no flags: EPIPE and SIGPIPE.
    int s = command("RESET 0");
    CHECK(wait_for(s, POLLIN, 3000) & (POLLHUP | POLLERR), "the reset arrives");
    int before = pipes;
    (void)!write(s, "x", 1);  // ECONNRESET or EPIPE
    CHECK(write(s, "x", 1) < 0 && errno == EPIPE, "write: EPIPE");
    CHECK(pipes > before, "write raises SIGPIPE");
    close(s);
}

static const struct test_entry cases[] = {
    {"recv-dontwait", dont_wait}, {"recv-waitall", wait_all}, {"recv-peek", peek},
    {"iovec", vectors},           {"sendfile", send_file},    {"epipe", broken_pipe},
};
RUN_CASES(cases)
