/*
 * epwget: an HTTP load client written against mTCP's API, in the style of mTCP's own example:
 * N requests for one URL with C connections at once, non-blocking connects and level-triggered
 * mtcp_epoll. Each request on a new connection, or (-k) several requests per persistent
 * connection (HTTP/1.1 keep-alive). With -N CORES (num_cores in the config at least as many)
 * a thread per core runs its own context with its share of the requests and connections, after
 * mtcp_init_rss for the server, as mTCP's epwget does.
 *
 *   epwget -f mtcp.conf -u IP:PORT/PATH -n N [-c C] [-k REQUESTS_PER_CONNECTION] [-N CORES] [-o FILE]
 *          [-t SECONDS]
 *
 * A response counts as good when its status is 200 and exactly Content-Length body bytes
 * arrive (or, without Content-Length, everything up to the server's close). -o writes the
 * first response's body to FILE. Ends with a line per core and a total:
 *   "epwget[I]: completed=N good=G errors=E bytes=B"
 *   "epwget: completed=N good=G errors=E bytes=B"
 * and exits 0 only when every request was good.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
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

/* One core's context and its share of the work. */
struct worker {
    int core;
    pthread_t thread;
    mctx_t mctx;
    int ep;
    long total, started, completed, good, errors;
    unsigned long long bytes;
    int concurrency;
    int rss_result;
    struct client *clients;
    struct client **by_socket; /* MAX_SOCKETS entries */
};

#define MAX_SOCKETS 65536

static struct sockaddr_in server;
static char request[1024];
static size_t request_len;
static int per_connection = 1;
static int seconds = 60;
static const char *out_path;
static volatile sig_atomic_t interrupted;

static void on_signal(int signum) {
    (void)signum;
    interrupted = 1;
}

static void finish_connection(struct worker *w, struct client *c, int ok) {
    if (c->sockid >= 0) {
        mtcp_epoll_ctl(w->mctx, w->ep, MTCP_EPOLL_CTL_DEL, c->sockid, NULL);
        if (ok)
            mtcp_close(w->mctx, c->sockid);
        else
            mtcp_abort(w->mctx, c->sockid);
        w->by_socket[c->sockid] = NULL;
    }
    c->sockid = -1;
    c->state = IDLE;
}

static void count_response(struct worker *w, struct client *c, int ok) {
    w->completed++;
    if (ok) w->good++;
    else w->errors++;
    if (c->out) {
        fclose(c->out);
        c->out = NULL;
    }
}

static int start_connection(struct worker *w, struct client *c) {
    int sockid = mtcp_socket(w->mctx, AF_INET, SOCK_STREAM, 0);
    if (sockid < 0 || sockid >= MAX_SOCKETS) {
        perror("epwget: mtcp_socket");
        return -1;
    }
    mtcp_setsock_nonblock(w->mctx, sockid);
    if (mtcp_connect(w->mctx, sockid, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        perror("epwget: mtcp_connect");
        mtcp_close(w->mctx, sockid);
        return -1;
    }
    c->sockid = sockid;
    c->state = CONNECTING;
    c->requests_on_connection = 0;
    c->server_closes = 0;
    w->by_socket[sockid] = c;
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLOUT};
    ev.data.sockid = sockid;
    mtcp_epoll_ctl(w->mctx, w->ep, MTCP_EPOLL_CTL_ADD, sockid, &ev);
    return 0;
}

/* Begins the next request on c's connection (opening one when it has none). */
static void next_request(struct worker *w, struct client *c) {
    if (w->started >= w->total) {
        if (c->sockid >= 0) finish_connection(w, c, 1);
        return;
    }
    w->started++;
    c->header_len = 0;
    c->body_received = 0;
    c->content_length = -1;
    c->status = 0;
    if (out_path && w->core == 0 && w->started == 1) c->out = fopen(out_path, "wb");
    if (c->sockid < 0) {
        if (start_connection(w, c) < 0) {
            count_response(w, c, 0);
            c->state = IDLE;
        }
        return;
    }
    c->state = SENDING;
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLOUT};
    ev.data.sockid = c->sockid;
    mtcp_epoll_ctl(w->mctx, w->ep, MTCP_EPOLL_CTL_MOD, c->sockid, &ev);
}

static void send_request(struct worker *w, struct client *c) {
    ssize_t n = mtcp_write(w->mctx, c->sockid, request, request_len);
    if (n != (ssize_t)request_len) {
        count_response(w, c, 0);
        finish_connection(w, c, 0);
        return;
    }
    c->requests_on_connection++;
    c->state = HEADER;
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLIN};
    ev.data.sockid = c->sockid;
    mtcp_epoll_ctl(w->mctx, w->ep, MTCP_EPOLL_CTL_MOD, c->sockid, &ev);
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

static void body_bytes(struct worker *w, struct client *c, const char *data, long n) {
    c->body_received += n;
    w->bytes += n;
    if (c->out) fwrite(data, 1, n, c->out);
}

/* The response is complete: count it and go on with the next request. */
static void response_done(struct worker *w, struct client *c) {
    int ok = c->status == 200 && (c->content_length < 0 || c->body_received == c->content_length);
    count_response(w, c, ok);
    int reuse = ok && !c->server_closes && c->content_length >= 0 && c->requests_on_connection < per_connection;
    if (!reuse) finish_connection(w, c, ok);
    next_request(w, c);
}

static void receive(struct worker *w, struct client *c) {
    char buffer[65536];
    for (;;) {
        ssize_t n = mtcp_read(w->mctx, c->sockid, buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EAGAIN) return;
            count_response(w, c, 0);
            finish_connection(w, c, 0);
            next_request(w, c);
            return;
        }
        if (n == 0) {
            /* The server closed: complete only for a body that runs to the close. */
            if (c->state == BODY && c->content_length < 0) {
                c->server_closes = 1;
                response_done(w, c);
            } else {
                count_response(w, c, 0);
                finish_connection(w, c, 0);
                next_request(w, c);
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
                count_response(w, c, 0);
                finish_connection(w, c, 0);
                next_request(w, c);
                return;
            }
            c->state = BODY;
            body_bytes(w, c, c->header + c->header_len - extra, extra);
            if ((size_t)n > take) body_bytes(w, c, buffer + take, n - take);
        } else {
            body_bytes(w, c, buffer, n);
        }
        if (c->content_length >= 0 && c->body_received >= c->content_length) {
            response_done(w, c);
            if (c->state != HEADER && c->state != BODY) return;
        }
    }
}

/* One core: its context, its connections, its share of the requests. */
static void *run_core(void *arg) {
    struct worker *w = arg;
    mtcp_core_affinitize(w->core);
    w->mctx = mtcp_create_context(w->core);
    if (!w->mctx) {
        fprintf(stderr, "epwget: cannot create the context of core %d\n", w->core);
        w->errors = w->total;
        return NULL;
    }
    /* Source ports whose replies come back to this core's queue (mTCP's per-core pools). */
    w->rss_result = mtcp_init_rss(w->mctx, INADDR_ANY, 1, server.sin_addr.s_addr, server.sin_port);
    if (w->rss_result != 0) perror("epwget: mtcp_init_rss");
    w->ep = mtcp_epoll_create(w->mctx, MAX_EVENTS);
    w->by_socket = calloc(MAX_SOCKETS, sizeof *w->by_socket);
    if (w->concurrency > w->total) w->concurrency = (int)w->total;
    w->clients = calloc(w->concurrency > 0 ? w->concurrency : 1, sizeof *w->clients);
    for (int i = 0; i < w->concurrency; i++) {
        w->clients[i].sockid = -1;
        next_request(w, &w->clients[i]);
    }
    struct mtcp_epoll_event events[MAX_EVENTS];
    time_t start = time(NULL);
    while (w->completed < w->total && !interrupted) {
        if (time(NULL) - start > seconds) {
            fprintf(stderr, "epwget[%d]: deadline of %d s passed\n", w->core, seconds);
            break;
        }
        int n = mtcp_epoll_wait(w->mctx, w->ep, events, MAX_EVENTS, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("mtcp_epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            int sockid = events[i].data.sockid;
            struct client *c = sockid >= 0 && sockid < MAX_SOCKETS ? w->by_socket[sockid] : NULL;
            if (!c) continue;
            if (c->state == CONNECTING) {
                int error = 0;
                socklen_t length = sizeof error;
                mtcp_getsockopt(w->mctx, sockid, SOL_SOCKET, SO_ERROR, &error, &length);
                if (error || (events[i].events & (MTCP_EPOLLERR | MTCP_EPOLLHUP))) {
                    count_response(w, c, 0);
                    finish_connection(w, c, 0);
                    next_request(w, c);
                    continue;
                }
                c->state = SENDING;
            }
            if (c->state == SENDING && (events[i].events & MTCP_EPOLLOUT)) {
                send_request(w, c);
            } else if ((c->state == HEADER || c->state == BODY) &&
                       (events[i].events & (MTCP_EPOLLIN | MTCP_EPOLLERR | MTCP_EPOLLHUP))) {
                receive(w, c);
            }
        }
    }
    for (int i = 0; i < w->concurrency; i++)
        if (w->clients[i].sockid >= 0) finish_connection(w, &w->clients[i], 1);
    w->errors += w->total - w->completed;
    mtcp_destroy_context(w->mctx);
    free(w->clients);
    free(w->by_socket);
    return NULL;
}

int main(int argc, char **argv) {
    const char *config = NULL, *url = NULL;
    long total = 0;
    int concurrency = 1, cores = 1, opt;
    while ((opt = getopt(argc, argv, "f:u:n:c:k:N:o:t:")) != -1) {
        switch (opt) {
        case 'f': config = optarg; break;
        case 'u': url = optarg; break;
        case 'n': total = atol(optarg); break;
        case 'c': concurrency = atoi(optarg); break;
        case 'k': per_connection = atoi(optarg); break;
        case 'N': cores = atoi(optarg); break;
        case 'o': out_path = optarg; break;
        case 't': seconds = atoi(optarg); break;
        default: goto usage;
        }
    }
    if (!config || !url || total < 1 || concurrency < 1 || per_connection < 1 || cores < 1 || cores > 64) goto usage;
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
    struct worker *workers = calloc(cores, sizeof *workers);
    for (int i = 0; i < cores; i++) {
        workers[i].core = i;
        /* Requests and connections split evenly; the first cores take the remainders. */
        workers[i].total = total / cores + (i < total % cores);
        workers[i].concurrency = concurrency / cores + (i < concurrency % cores);
        if (workers[i].concurrency < 1) workers[i].concurrency = 1;
    }
    if (cores == 1) {
        run_core(&workers[0]);
    } else {
        for (int i = 0; i < cores; i++) pthread_create(&workers[i].thread, NULL, run_core, &workers[i]);
        for (int i = 0; i < cores; i++) pthread_join(workers[i].thread, NULL);
    }
    long completed = 0, good = 0, errors = 0;
    unsigned long long bytes = 0;
    for (int i = 0; i < cores; i++) {
        struct worker *w = &workers[i];
        printf("epwget[%d]: completed=%ld good=%ld errors=%ld bytes=%llu init_rss=%d\n", i, w->completed, w->good,
               w->errors, w->bytes, w->rss_result);
        completed += w->completed;
        good += w->good;
        errors += w->errors;
        bytes += w->bytes;
    }
    printf("epwget: completed=%ld good=%ld errors=%ld bytes=%llu\n", completed, good, errors, bytes);
    fflush(stdout);
    free(workers);
    mtcp_destroy();
    return good == total ? 0 : 1;

usage:
    fprintf(stderr,
            "usage: %s -f mtcp.conf -u IP:PORT/PATH -n N [-c C] [-k REQUESTS_PER_CONNECTION] [-N CORES] [-o FILE] "
            "[-t SECONDS]\n",
            argv[0]);
    return 2;
}
