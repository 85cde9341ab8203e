/*
 * epwget: an HTTP load client written against mTCP's API, in the style of mTCP's own example:
 * N requests for one URL with C connections at once on one context, non-blocking connects and
 * level-triggered mtcp_epoll. Each request on a new connection, or (-k) several requests per
 * persistent connection (HTTP/1.1 keep-alive).
 *
 *   epwget -f mtcp.conf -u IP:PORT/PATH -n N [-c C] [-k REQUESTS_PER_CONNECTION] [-o FILE] [-t SECONDS]
 *
 * A response counts as good when its status is 200 and exactly Content-Length body bytes
 * arrive (or, without Content-Length, everything up to the server's close). -o writes the
 * first response's body to FILE. Ends with
 *   "epwget: completed=N good=G errors=E bytes=B"
 * and exits 0 only when every request was good.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mtcp_api.h>
#include <mtcp_epoll.h>

#define MAX_EVENTS 1024
#define HEADER_SIZE 8192

enum state { IDLE, CONNECTING, SENDING, HEADER, BODY };

struct client {
    enum state state;
    int sockid;
    int requests_on_connection;
    char request_sent;
    char header[HEADER_SIZE];
    size_t header_len;
    long content_length; /* -1: until close */
    long body_received;
    int status;
    int server_closes;
    FILE *out;
};

static mctx_t mctx;
static int ep;
static struct sockaddr_in server;
static char request[1024];
static size_t request_len;
static long total, started, completed, good, errors;
static unsigned long long bytes;
static int per_connection = 1;
static const char *out_path;
static volatile sig_atomic_t interrupted;
static struct client *by_socket[65536];

static void on_signal(int signum) {
    (void)signum;
    interrupted = 1;
}

static void finish_connection(struct client *c, int ok) {
    if (c->sockid >= 0) {
        mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_DEL, c->sockid, NULL);
        if (ok)
            mtcp_close(mctx, c->sockid);
        else
            mtcp_abort(mctx, c->sockid);
        by_socket[c->sockid] = NULL;
    }
    c->sockid = -1;
    c->state = IDLE;
}

static void count_response(struct client *c, int ok) {
    completed++;
    if (ok) good++;
    else errors++;
    if (c->out) {
        fclose(c->out);
        c->out = NULL;
    }
}

static int start_connection(struct client *c) {
    int sockid = mtcp_socket(mctx, AF_INET, SOCK_STREAM, 0);
    if (sockid < 0 || sockid >= 65536) {
        perror("epwget: mtcp_socket");
        return -1;
    }
    mtcp_setsock_nonblock(mctx, sockid);
    if (mtcp_connect(mctx, sockid, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        perror("epwget: mtcp_connect");
        mtcp_close(mctx, sockid);
        return -1;
    }
    c->sockid = sockid;
    c->state = CONNECTING;
    c->requests_on_connection = 0;
    c->server_closes = 0;
    by_socket[sockid] = c;
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLOUT};
    ev.data.sockid = sockid;
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_ADD, sockid, &ev);
    return 0;
}

/* Begins the next request on c's connection (opening one when it has none). */
static void next_request(struct client *c) {
    if (started >= total) {
        if (c->sockid >= 0) finish_connection(c, 1);
        return;
    }
    started++;
    c->header_len = 0;
    c->body_received = 0;
    c->content_length = -1;
    c->status = 0;
    if (out_path && started == 1) c->out = fopen(out_path, "wb");
    if (c->sockid < 0) {
        if (start_connection(c) < 0) {
            count_response(c, 0);
            c->state = IDLE;
        }
        return;
    }
    c->state = SENDING;
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLOUT};
    ev.data.sockid = c->sockid;
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_MOD, c->sockid, &ev);
}

static void send_request(struct client *c) {
    ssize_t n = mtcp_write(mctx, c->sockid, request, request_len);
    if (n != (ssize_t)request_len) {
        count_response(c, 0);
        finish_connection(c, 0);
        return;
    }
    c->requests_on_connection++;
    c->state = HEADER;
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLIN};
    ev.data.sockid = c->sockid;
    mtcp_epoll_ctl(mctx, ep, MTCP_EPOLL_CTL_MOD, c->sockid, &ev);
}

/* Parses the header once complete; returns the number of body bytes that came with it, or -1. */
static long parse_header(struct client *c) {
    char *end = NULL;
    for (size_t i = 3; i < c->header_len; i++)
        if (memcmp(c->header + i - 3, "\r\n\r\n", 4) == 0) {
            end = c->header + i + 1;
            break;
        }
    if (!end) return -2;
    end[-1] = 0;
    if (sscanf(c->header, "HTTP/%*d.%*d %d", &c->status) != 1) return -1;
    const char *length = strcasestr(c->header, "\r\nContent-Length:");
    if (length) c->content_length = atol(length + 17);
    const char *connection = strcasestr(c->header, "\r\nConnection:");
    if (connection) {
        connection += 13;
        while (*connection == ' ') connection++;
        c->server_closes = strncasecmp(connection, "close", 5) == 0;
    } else {
        c->server_closes = strncmp(c->header, "HTTP/1.0", 8) == 0;
    }
    return (long)(c->header + c->header_len - end);
}

static void body_bytes(struct client *c, const char *data, long n) {
    c->body_received += n;
    bytes += n;
    if (c->out) fwrite(data, 1, n, c->out);
}

/* The response is complete: count it and go on with the next request. */
static void response_done(struct client *c) {
    int ok = c->status == 200 && (c->content_length < 0 || c->body_received == c->content_length);
    count_response(c, ok);
    int reuse = ok && !c->server_closes && c->content_length >= 0 && c->requests_on_connection < per_connection;
    if (!reuse) finish_connection(c, ok);
    next_request(c);
}

static void receive(struct client *c) {
    char buffer[65536];
    for (;;) {
        ssize_t n = mtcp_read(mctx, c->sockid, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EAGAIN) return;
            count_response(c, 0);
            finish_connection(c, 0);
            next_request(c);
            return;
        }
        if (n == 0) {
            /* The server closed: complete only for a body that runs to the close. */
            if (c->state == BODY && c->content_length < 0) {
                c->server_closes = 1;
                response_done(c);
            } else {
                count_response(c, 0);
                finish_connection(c, 0);
                next_request(c);
            }
            return;
        }
        if (c->state == HEADER) {
            size_t room = HEADER_SIZE - c->header_len;
            size_t take = (size_t)n < room ? (size_t)n : room;
            memcpy(c->header + c->header_len, buffer, take);
            c->header_len += take;
            long extra = parse_header(c);
            if (extra == -2) {
                if (c->header_len == HEADER_SIZE) extra = -1;
                else continue;
            }
            if (extra < 0) {
                count_response(c, 0);
                finish_connection(c, 0);
                next_request(c);
                return;
            }
            c->state = BODY;
            body_bytes(c, c->header + c->header_len - extra, extra);
            if ((size_t)n > take) body_bytes(c, buffer + take, n - take);
        } else {
            body_bytes(c, buffer, n);
        }
        if (c->content_length >= 0 && c->body_received >= c->content_length) {
            response_done(c);
            if (c->state != HEADER && c->state != BODY) return;
        }
    }
}

int main(int argc, char **argv) {
    const char *config = NULL, *url = NULL;
    int concurrency = 1, seconds = 60, opt;
    while ((opt = getopt(argc, argv, "f:u:n:c:k:o:t:")) != -1) {
        switch (opt) {
        case 'f': config = optarg; break;
        case 'u': url = optarg; break;
        case 'n': total = atol(optarg); break;
        case 'c': concurrency = atoi(optarg); break;
        case 'k': per_connection = atoi(optarg); break;
        case 'o': out_path = optarg; break;
        case 't': seconds = atoi(optarg); break;
        default: goto usage;
        }
    }
    if (!config || !url || total < 1 || concurrency < 1 || per_connection < 1) goto usage;
    char host[64];
    int port = 80;
    const char *path = strchr(url, '/');
    size_t host_len = path ? (size_t)(path - url) : strlen(url);
    if (host_len >= sizeof host) goto usage;
    memcpy(host, url, host_len);
    host[host_len] = 0;
    char *colon = strchr(host, ':');
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    server.sin_family = AF_INET;
    server.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) goto usage;
    request_len = snprintf(request, sizeof request,
                           "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: epwget (mtcp-swift)\r\nConnection: %s\r\n\r\n",
                           path ? path : "/", host, per_connection > 1 ? "keep-alive" : "close");

    if (mtcp_init(config) != 0) {
        fprintf(stderr, "epwget: mtcp_init failed\n");
        return 1;
    }
    mtcp_register_signal(SIGINT, on_signal);
    mtcp_core_affinitize(0);
    mctx = mtcp_create_context(0);
    if (!mctx) {
        fprintf(stderr, "epwget: cannot create the context\n");
        return 1;
    }
    mtcp_init_rss(mctx, INADDR_ANY, 1, server.sin_addr.s_addr, server.sin_port);
    ep = mtcp_epoll_create(mctx, MAX_EVENTS);
    if (concurrency > total) concurrency = (int)total;
    struct client *clients = calloc(concurrency, sizeof *clients);
    for (int i = 0; i < concurrency; i++) {
        clients[i].sockid = -1;
        next_request(&clients[i]);
    }
    struct mtcp_epoll_event events[MAX_EVENTS];
    time_t start = time(NULL);
    while (completed < total && !interrupted) {
        if (time(NULL) - start > seconds) {
            fprintf(stderr, "epwget: deadline of %d s passed\n", seconds);
            break;
        }
        int n = mtcp_epoll_wait(mctx, ep, events, MAX_EVENTS, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("mtcp_epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            int sockid = events[i].data.sockid;
            struct client *c = sockid >= 0 && sockid < 65536 ? by_socket[sockid] : NULL;
            if (!c) continue;
            if (c->state == CONNECTING) {
                int error = 0;
                socklen_t length = sizeof error;
                mtcp_getsockopt(mctx, sockid, SOL_SOCKET, SO_ERROR, &error, &length);
                if (error || (events[i].events & (MTCP_EPOLLERR | MTCP_EPOLLHUP))) {
                    count_response(c, 0);
                    finish_connection(c, 0);
                    next_request(c);
                    continue;
                }
                c->state = SENDING;
            }
            if (c->state == SENDING && (events[i].events & MTCP_EPOLLOUT)) {
                send_request(c);
            } else if ((c->state == HEADER || c->state == BODY) &&
                       (events[i].events & (MTCP_EPOLLIN | MTCP_EPOLLERR | MTCP_EPOLLHUP))) {
                receive(c);
            }
        }
    }
    for (int i = 0; i < concurrency; i++)
        if (clients[i].sockid >= 0) finish_connection(&clients[i], 1);
    errors += total - completed;
    printf("epwget: completed=%ld good=%ld errors=%ld bytes=%llu\n", completed, good, errors, bytes);
    fflush(stdout);
    mtcp_destroy_context(mctx);
    mtcp_destroy();
    return good == total ? 0 : 1;

usage:
    fprintf(stderr,
            "usage: %s -f mtcp.conf -u IP:PORT/PATH -n N [-c C] [-k REQUESTS_PER_CONNECTION] [-o FILE] [-t SECONDS]\n",
            argv[0]);
    return 2;
}
