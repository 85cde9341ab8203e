/*
 * epserver: a static-file HTTP server written against mTCP's API, in the style of mTCP's own
 * example: one thread and one context per core, a listener per context, level-triggered
 * mtcp_epoll, non-blocking sockets, files read into memory at start, HTTP/1.1 keep-alive.
 *
 *   epserver -f mtcp.conf -d DIR [-p PORT] [-N CORES] [-t SECONDS]
 *
 * Prints "epserver: serving N files on port P" when ready and a line of counters per core at
 * exit (SIGINT/SIGTERM, or after -t seconds).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mtcp_api.h>
#include <mtcp_epoll.h>

#define MAX_CORES 16
#define MAX_FILES 64
#define MAX_EVENTS 1024
#define REQUEST_SIZE 8192

struct file_entry {
    char name[256];
    char *data;
    size_t size;
};

struct connection {
    int active;
    char request[REQUEST_SIZE];
    size_t request_len;
    /* The response being sent: header then body. */
    char header[512];
    size_t header_len, header_sent;
    const char *body;
    size_t body_len, body_sent;
    int close_after;
};

struct core_state {
    int core;
    mctx_t mctx;
    int ep;
    int listener;
    int max_conns;
    struct connection *conns;
    unsigned long accepted, requests, not_found, errors;
    pthread_t thread;
};

static struct file_entry files[MAX_FILES];
static int file_count;
static int port = 80;
static int cores = 1;
static int seconds = 0;
static volatile sig_atomic_t done;
/* Cores whose listener is up: "serving" is printed when all are. */
static int ready_cores;
static struct core_state states[MAX_CORES];

static void on_signal(int signum) {
    (void)signum;
    done = 1;
}

static void load_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        perror("opendir");
        exit(1);
    }
    struct dirent *e;
    while ((e = readdir(d)) && file_count < MAX_FILES) {
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || strlen(e->d_name) >= sizeof files[0].name) continue;
        struct file_entry *f = &files[file_count];
        f->data = malloc(st.st_size ? st.st_size : 1);
        int fd = open(path, O_RDONLY);
        size_t got = 0;
        while (fd >= 0 && got < (size_t)st.st_size) {
            ssize_t n = read(fd, f->data + got, st.st_size - got);
            if (n <= 0) break;
            got += n;
        }
        if (fd >= 0) close(fd);
        if (got != (size_t)st.st_size) {
            fprintf(stderr, "epserver: cannot read %s\n", path);
            exit(1);
        }
        strcpy(f->name, e->d_name);
        f->size = got;
        file_count++;
    }
    closedir(d);
}

static const struct file_entry *find_file(const char *name) {
    if (*name == 0) name = "index.html";
    for (int i = 0; i < file_count; i++)
        if (strcmp(files[i].name, name) == 0) return &files[i];
    return NULL;
}

static void close_connection(struct core_state *s, int sockid) {
    mtcp_epoll_ctl(s->mctx, s->ep, MTCP_EPOLL_CTL_DEL, sockid, NULL);
    mtcp_close(s->mctx, sockid);
    s->conns[sockid].active = 0;
}

static void set_interest(struct core_state *s, int sockid, uint32_t events) {
    struct mtcp_epoll_event ev;
    ev.events = events;
    ev.data.sockid = sockid;
    mtcp_epoll_ctl(s->mctx, s->ep, MTCP_EPOLL_CTL_MOD, sockid, &ev);
}

/* Sends what it can of the response; 1 when all of it is out, 0 when the socket is full,
 * -1 on an error. */
static int send_response(struct core_state *s, int sockid, struct connection *c) {
    while (c->header_sent < c->header_len) {
        ssize_t n = mtcp_write(s->mctx, sockid, c->header + c->header_sent, c->header_len - c->header_sent);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        c->header_sent += n;
    }
    while (c->body_sent < c->body_len) {
        size_t chunk = c->body_len - c->body_sent;
        if (chunk > 65536) chunk = 65536;
        ssize_t n = mtcp_write(s->mctx, sockid, c->body + c->body_sent, chunk);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        c->body_sent += n;
    }
    return 1;
}

/* Starts the response to the complete request at the front of the buffer (header length
 * `end`); 0, or -1 for a request we cannot parse. */
static int start_response(struct core_state *s, struct connection *c, size_t end) {
    char method[16], target[512], version[16];
    c->request[end - 1] = 0;
    if (sscanf(c->request, "%15s %511s %15s", method, target, version) != 3) return -1;
    int http11 = strcmp(version, "HTTP/1.1") == 0;
    const char *connection = strcasestr(c->request, "\r\nConnection:");
    int keep = http11;
    if (connection) {
        connection += 13;
        while (*connection == ' ') connection++;
        if (strncasecmp(connection, "close", 5) == 0) keep = 0;
        if (strncasecmp(connection, "keep-alive", 10) == 0) keep = 1;
    }
    const char *name = target[0] == '/' ? target + 1 : target;
    char *query = strchr(target, '?');
    if (query) *query = 0;
    const struct file_entry *f = strcmp(method, "GET") == 0 ? find_file(name) : NULL;
    s->requests++;
    if (f) {
        c->body = f->data;
        c->body_len = f->size;
        c->header_len = snprintf(c->header, sizeof c->header,
                                 "HTTP/1.1 200 OK\r\nServer: epserver (mtcp-swift)\r\nContent-Length: %zu\r\n"
                                 "Content-Type: application/octet-stream\r\nConnection: %s\r\n\r\n",
                                 f->size, keep ? "keep-alive" : "close");
    } else {
        static const char missing[] = "not found\n";
        s->not_found++;
        c->body = missing;
        c->body_len = sizeof missing - 1;
        c->header_len = snprintf(c->header, sizeof c->header,
                                 "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                                 c->body_len, keep ? "keep-alive" : "close");
    }
    c->header_sent = c->body_sent = 0;
    c->close_after = !keep;
    /* Keep what follows the request (a pipelined next one). */
    memmove(c->request, c->request + end, c->request_len - end);
    c->request_len -= end;
    return 0;
}

/* The end of the request header in the buffer (just past "\r\n\r\n"), or 0. */
static size_t header_end(struct connection *c) {
    for (size_t i = 3; i < c->request_len; i++)
        if (memcmp(c->request + i - 3, "\r\n\r\n", 4) == 0) return i + 1;
    return 0;
}

/* Serves every complete request buffered, as far as the socket takes the responses. */
static void serve(struct core_state *s, int sockid) {
    struct connection *c = &s->conns[sockid];
    for (;;) {
        if (c->header_len) {
            int r = send_response(s, sockid, c);
            if (r < 0) {
                s->errors++;
                close_connection(s, sockid);
                return;
            }
            if (r == 0) {
                set_interest(s, sockid, MTCP_EPOLLIN | MTCP_EPOLLOUT);
                return;
            }
            c->header_len = 0;
            if (c->close_after) {
                close_connection(s, sockid);
                return;
            }
            set_interest(s, sockid, MTCP_EPOLLIN);
        }
        size_t end = header_end(c);
        if (!end) return;
        if (start_response(s, c, end) < 0) {
            s->errors++;
            close_connection(s, sockid);
            return;
        }
    }
}

static void handle_read(struct core_state *s, int sockid) {
    struct connection *c = &s->conns[sockid];
    for (;;) {
        if (c->request_len == REQUEST_SIZE) {
            s->errors++; /* a header larger than the buffer */
            close_connection(s, sockid);
            return;
        }
        ssize_t n = mtcp_read(s->mctx, sockid, c->request + c->request_len, REQUEST_SIZE - c->request_len);
        if (n > 0) {
            c->request_len += n;
            continue;
        }
        if (n == 0) {
            close_connection(s, sockid);
            return;
        }
        if (errno == EAGAIN) break;
        if (errno != ECONNRESET) s->errors++;
        close_connection(s, sockid);
        return;
    }
    serve(s, sockid);
}

static void accept_all(struct core_state *s) {
    for (;;) {
        int sockid = mtcp_accept(s->mctx, s->listener, NULL, NULL);
        if (sockid < 0) {
            if (errno != EAGAIN) s->errors++;
            return;
        }
        if (sockid >= s->max_conns) {
            mtcp_close(s->mctx, sockid);
            s->errors++;
            continue;
        }
        s->accepted++;
        memset(&s->conns[sockid], 0, sizeof s->conns[sockid]);
        s->conns[sockid].active = 1;
        mtcp_setsock_nonblock(s->mctx, sockid);
        struct mtcp_epoll_event ev;
        ev.events = MTCP_EPOLLIN;
        ev.data.sockid = sockid;
        mtcp_epoll_ctl(s->mctx, s->ep, MTCP_EPOLL_CTL_ADD, sockid, &ev);
    }
}

static void *run_core(void *arg) {
    struct core_state *s = arg;
    mtcp_core_affinitize(s->core);
    s->mctx = mtcp_create_context(s->core);
    if (!s->mctx) {
        fprintf(stderr, "epserver: cannot create the context of core %d\n", s->core);
        exit(1);
    }
    struct mtcp_conf conf;
    mtcp_getconf(&conf);
    s->max_conns = conf.max_concurrency;
    s->conns = calloc(s->max_conns, sizeof *s->conns);
    s->ep = mtcp_epoll_create(s->mctx, MAX_EVENTS);
    s->listener = mtcp_socket(s->mctx, AF_INET, SOCK_STREAM, 0);
    mtcp_setsock_nonblock(s->mctx, s->listener);
    int one = 1;
    mtcp_setsockopt(s->mctx, s->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY};
    if (mtcp_bind(s->mctx, s->listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        mtcp_listen(s->mctx, s->listener, 4096) < 0) {
        perror("epserver: bind/listen");
        exit(1);
    }
    struct mtcp_epoll_event ev = {.events = MTCP_EPOLLIN};
    ev.data.sockid = s->listener;
    mtcp_epoll_ctl(s->mctx, s->ep, MTCP_EPOLL_CTL_ADD, s->listener, &ev);
    __atomic_add_fetch(&ready_cores, 1, __ATOMIC_SEQ_CST);
    struct mtcp_epoll_event *events = calloc(MAX_EVENTS, sizeof *events);
    while (!done) {
        int n = mtcp_epoll_wait(s->mctx, s->ep, events, MAX_EVENTS, 100);
        if (n < 0) {
            if (errno != EINTR) perror("mtcp_epoll_wait");
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            int sockid = events[i].data.sockid;
            if (sockid == s->listener) {
                accept_all(s);
            } else if (events[i].events & MTCP_EPOLLERR) {
                close_connection(s, sockid);
            } else if (events[i].events & MTCP_EPOLLIN) {
                handle_read(s, sockid);
            } else if (events[i].events & MTCP_EPOLLOUT) {
                serve(s, sockid);
            } else if (events[i].events & MTCP_EPOLLHUP) {
                close_connection(s, sockid);
            }
        }
    }
    free(events);
    for (int id = 0; id < s->max_conns; id++)
        if (s->conns[id].active) mtcp_close(s->mctx, id);
    mtcp_destroy_context(s->mctx);
    return NULL;
}

int main(int argc, char **argv) {
    const char *config = NULL, *dir = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "f:d:p:N:t:")) != -1) {
        switch (opt) {
        case 'f': config = optarg; break;
        case 'd': dir = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'N': cores = atoi(optarg); break;
        case 't': seconds = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s -f mtcp.conf -d DIR [-p PORT] [-N CORES] [-t SECONDS]\n", argv[0]);
            return 2;
        }
    }
    if (!config || !dir || cores < 1 || cores > MAX_CORES) {
        fprintf(stderr, "usage: %s -f mtcp.conf -d DIR [-p PORT] [-N CORES] [-t SECONDS]\n", argv[0]);
        return 2;
    }
    load_files(dir);
    if (mtcp_init(config) != 0) {
        fprintf(stderr, "epserver: mtcp_init failed\n");
        return 1;
    }
    struct mtcp_conf conf;
    mtcp_getconf(&conf);
    if (cores > conf.num_cores) {
        conf.num_cores = cores;
        mtcp_setconf(&conf);
    }
    mtcp_register_signal(SIGINT, on_signal);
    mtcp_register_signal(SIGTERM, on_signal);
    for (int i = 0; i < cores; i++) {
        states[i].core = i;
        pthread_create(&states[i].thread, NULL, run_core, &states[i]);
    }
    while (__atomic_load_n(&ready_cores, __ATOMIC_SEQ_CST) < cores && !done) usleep(1000);
    printf("epserver: serving %d files on port %d with %d core(s)\n", file_count, port, cores);
    fflush(stdout);
    time_t start = time(NULL);
    while (!done) {
        usleep(100000);
        if (seconds > 0 && time(NULL) - start >= seconds) done = 1;
    }
    for (int i = 0; i < cores; i++) {
        pthread_join(states[i].thread, NULL);
        printf("epserver[%d]: accepted=%lu requests=%lu not_found=%lu errors=%lu\n", i, states[i].accepted,
               states[i].requests, states[i].not_found, states[i].errors);
    }
    mtcp_destroy();
    return 0;
}
