/*
 * mtcp_api.h: mTCP's socket API on the mtcp-swift stack (libmtcp.so).
 *
 * The names, argument orders and struct mtcp_conf follow mTCP's header, so programs written
 * for mTCP build against this one unchanged. Differences in behaviour (all towards Linux):
 * setsockopt/getsockopt are real; blocking calls block (accept, connect, read, write) and
 * honour SO_RCVTIMEO/SO_SNDTIMEO; shutdown exists; errors are Linux errno values in errno
 * with -1 returned. Each context is one stack instance driven by the threads that call into
 * it (run to completion): mtcp_epoll_wait and blocking calls run the stack's loop.
 */
#ifndef MTCP_API_H
#define MTCP_API_H

#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifndef UNUSED
#define UNUSED(x) (void)(x)
#endif

#ifndef INPORT_ANY
#define INPORT_ANY (uint16_t)0
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* What an mTCP socket id names (kept for programs that use the names). */
enum socket_type {
    MTCP_SOCK_UNUSED,
    MTCP_SOCK_STREAM,
    MTCP_SOCK_PROXY,
    MTCP_SOCK_LISTENER,
    MTCP_SOCK_EPOLL,
    MTCP_SOCK_PIPE,
};

/* Settings read by mtcp_init from the config file; mtcp_setconf may change them before the
 * first context is created. Buffer sizes in bytes, timeouts in seconds. */
struct mtcp_conf {
    int num_cores;
    int max_concurrency;

    int max_num_buffers;
    int rcvbuf_size;
    int sndbuf_size;

    int tcp_timewait;
    int tcp_timeout;
};

typedef struct mtcp_context *mctx_t;

/* Reads the config file (key = value lines); 0 on success, -1 with a message on stderr. */
int mtcp_init(const char *config_file);

/* Releases what mtcp_init set up; contexts must be destroyed first. */
void mtcp_destroy(void);

int mtcp_getconf(struct mtcp_conf *conf);

int mtcp_setconf(const struct mtcp_conf *conf);

/* Pins the calling thread to cpu (modulo the CPUs present); 0 or -1. */
int mtcp_core_affinitize(int cpu);

/* A stack instance on its own receive queue for core cpu (0 <= cpu < num_cores); NULL on error. */
mctx_t mtcp_create_context(int cpu);

void mtcp_destroy_context(mctx_t mctx);

typedef void (*mtcp_sighandler_t)(int);

/* Installs handler for signum (SIGINT and friends); returns the previous handler. */
mtcp_sighandler_t mtcp_register_signal(int signum, mtcp_sighandler_t handler);

/* A connected pair inside the context: write to pipeid[1], read from pipeid[0]; both work with
 * mtcp_read/mtcp_write/mtcp_close and mtcp_epoll. */
int mtcp_pipe(mctx_t mctx, int pipeid[2]);

int mtcp_getsockopt(mctx_t mctx, int sockid, int level, int optname, void *optval, socklen_t *optlen);

int mtcp_setsockopt(mctx_t mctx, int sockid, int level, int optname, const void *optval, socklen_t optlen);

int mtcp_setsock_nonblock(mctx_t mctx, int sockid);

/* ioctl for sockets: FIONREAD (int *: bytes readable) and FIONBIO (int *: non-blocking if set). */
int mtcp_socket_ioctl(mctx_t mctx, int sockid, int request, void *argp);

/* AF_INET, SOCK_STREAM (SOCK_NONBLOCK may be or-ed in), protocol 0 or IPPROTO_TCP. */
int mtcp_socket(mctx_t mctx, int domain, int type, int protocol);

int mtcp_bind(mctx_t mctx, int sockid, const struct sockaddr *addr, socklen_t addrlen);

int mtcp_listen(mctx_t mctx, int sockid, int backlog);

int mtcp_accept(mctx_t mctx, int sockid, struct sockaddr *addr, socklen_t *addrlen);

/* Prepares active opens towards daddr:dport (network byte order) from num_addr addresses
 * starting at saddr_base so that replies come back to this context's queue. */
int mtcp_init_rss(mctx_t mctx, in_addr_t saddr_base, int num_addr, in_addr_t daddr, in_addr_t dport);

int mtcp_connect(mctx_t mctx, int sockid, const struct sockaddr *addr, socklen_t addrlen);

int mtcp_close(mctx_t mctx, int sockid);

/* Resets the connection (RST) and closes the socket. */
int mtcp_abort(mctx_t mctx, int sockid);

/* SHUT_RD, SHUT_WR or SHUT_RDWR. */
int mtcp_shutdown(mctx_t mctx, int sockid, int sock_how);

int mtcp_getsockname(mctx_t mctx, int sockid, struct sockaddr *addr, socklen_t *addrlen);

int mtcp_getpeername(mctx_t mctx, int sockid, struct sockaddr *addr, socklen_t *addrlen);

ssize_t mtcp_read(mctx_t mctx, int sockid, char *buf, size_t len);

/* flags: 0 or MSG_PEEK. */
ssize_t mtcp_recv(mctx_t mctx, int sockid, char *buf, size_t len, int flags);

int mtcp_readv(mctx_t mctx, int sockid, const struct iovec *iov, int numIOV);

ssize_t mtcp_write(mctx_t mctx, int sockid, const char *buf, size_t len);

int mtcp_writev(mctx_t mctx, int sockid, const struct iovec *iov, int numIOV);

#ifdef __cplusplus
}
#endif

#endif /* MTCP_API_H */
