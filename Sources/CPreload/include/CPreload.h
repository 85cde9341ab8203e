// The C side of the preload library: the real libc functions (resolved with dlsym(RTLD_NEXT)
// so the library's own I/O never reaches its own exports), the descriptor table the hooks
// consult on every call, the lock that guards the stack instance, and helpers for macros and
// variadic calls Swift cannot express.
#pragma once

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

// --- Descriptor table: one int32 per fd; 0 means "not ours, pass to libc". ---------------
#define MTCP_FD_TABLE_SIZE (1 << 20)
extern int32_t *mtcp_fd_table;

static inline int32_t mtcp_fd_entry(int fd) {
    if ((unsigned)fd >= MTCP_FD_TABLE_SIZE || mtcp_fd_table == NULL) return 0;
    return __atomic_load_n(&mtcp_fd_table[fd], __ATOMIC_ACQUIRE);
}

/// Sets fd's entry; false when fd lies beyond the table.
static inline int mtcp_fd_set_entry(int fd, int32_t value) {
    if ((unsigned)fd >= MTCP_FD_TABLE_SIZE || mtcp_fd_table == NULL) return 0;
    __atomic_store_n(&mtcp_fd_table[fd], value, __ATOMIC_RELEASE);
    return 1;
}

/// The MTCP_* environment entries ("KEY=value", NULL-terminated) as the program started.
extern char **mtcp_saved_settings;

/// 1 unless MTCP_ENABLE=0 (then every hook passes straight to libc).
extern int mtcp_enabled;

// --- The lock guarding the process's stack instance. --------------------------------------
void mtcp_lock(void);
void mtcp_unlock(void);
/// In a fork()ed child: the lock is reset to unlocked (the child has one thread).
void mtcp_lock_reset(void);

// --- One lock per stack instance (MTCP_CORES), taken after the process lock, never before. --
#define MTCP_MAX_INSTANCES 16
void mtcp_instance_lock(int instance);
void mtcp_instance_unlock(int instance);
/// In a fork()ed child: every instance lock reset to unlocked.
void mtcp_instance_locks_reset(void);
/// The instance the calling thread was given at its first call (-1: none yet).
int mtcp_thread_instance(void);
void mtcp_set_thread_instance(int instance);

// --- errno ----------------------------------------------------------------------------------
static inline int mtcp_errno(void) { return errno; }
static inline void mtcp_set_errno(int value) { errno = value; }

// --- The real functions. --------------------------------------------------------------------
int mtcp_real_socket(int domain, int type, int protocol);
int mtcp_real_bind(int fd, const struct sockaddr *address, socklen_t length);
int mtcp_real_listen(int fd, int backlog);
int mtcp_real_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
int mtcp_real_connect(int fd, const struct sockaddr *address, socklen_t length);
ssize_t mtcp_real_read(int fd, void *buffer, size_t count);
ssize_t mtcp_real_write(int fd, const void *buffer, size_t count);
ssize_t mtcp_real_readv(int fd, const struct iovec *vector, int count);
ssize_t mtcp_real_writev(int fd, const struct iovec *vector, int count);
ssize_t mtcp_real_recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *address,
                           socklen_t *address_length);
ssize_t mtcp_real_recvmsg(int fd, struct msghdr *message, int flags);
ssize_t mtcp_real_sendto(int fd, const void *buffer, size_t length, int flags, const struct sockaddr *address,
                         socklen_t address_length);
ssize_t mtcp_real_sendmsg(int fd, const struct msghdr *message, int flags);
ssize_t mtcp_real_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
int mtcp_real_close(int fd);
int mtcp_real_shutdown(int fd, int how);
int mtcp_real_getsockname(int fd, struct sockaddr *address, socklen_t *length);
int mtcp_real_getpeername(int fd, struct sockaddr *address, socklen_t *length);
int mtcp_real_setsockopt(int fd, int level, int name, const void *value, socklen_t length);
int mtcp_real_getsockopt(int fd, int level, int name, void *value, socklen_t *length);
int mtcp_real_fcntl(int fd, int command, uintptr_t argument);
int mtcp_real_ioctl(int fd, unsigned long request, uintptr_t argument);
int mtcp_real_dup(int fd);
int mtcp_real_dup2(int fd, int target);
int mtcp_real_dup3(int fd, int target, int flags);
int mtcp_real_epoll_create1(int flags);
int mtcp_real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
int mtcp_real_epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *mask);
int mtcp_real_ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask);
int mtcp_real_poll(struct pollfd *fds, nfds_t count, int timeout);
int mtcp_real_select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, struct timeval *timeout);
int mtcp_real_pselect(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds, const struct timespec *timeout,
                      const sigset_t *mask);
pid_t mtcp_real_fork(void);
int mtcp_real_memfd_create(const char *name, unsigned int flags);

/// While non-zero, memfd_create("nohuge") fails with ENOSYS (see exports.c).
extern int mtcp_dpdk_private_memory;

// --- Small helpers. ---------------------------------------------------------------------------
int mtcp_eventfd(void);
/// Moves one of the library's own descriptors to the private range (see CShim).
int mtcp_move_private(int fd);
/// Puts the private range in the upper part of the program's descriptor limit.
void mtcp_set_private_fd_floor(void);
/// Adds fd to a kernel epoll set with a 64-bit tag.
int mtcp_epoll_add_tagged(int epfd, int fd, uint32_t events, uint64_t tag);
/// The packed struct epoll_event's fields (x86_64 packs it to 12 bytes).
static inline uint32_t mtcp_epoll_event_events(const struct epoll_event *event) { return event->events; }
static inline uint64_t mtcp_epoll_event_data(const struct epoll_event *event) { return event->data.u64; }
static inline void mtcp_epoll_event_set(struct epoll_event *event, uint32_t events, uint64_t data) {
    event->events = events;
    event->data.u64 = data;
}
static inline size_t mtcp_epoll_event_size(void) { return sizeof(struct epoll_event); }
static inline int mtcp_fd_isset(int fd, const fd_set *set) { return set != NULL && FD_ISSET(fd, set); }
static inline void mtcp_fd_set(int fd, fd_set *set) { FD_SET(fd, set); }
static inline void mtcp_fd_zero(fd_set *set) { FD_ZERO(set); }
/// Blocks every signal in the calling thread (the library's own threads).
void mtcp_block_all_signals(void);
/// Starts a detached thread running body(context).
int mtcp_start_thread(void *(*body)(void *), void *context);

// --- Implemented in Swift (the variadic and fortified exports forward here). ---------------
int mtcp_preload_fcntl(int fd, int command, uintptr_t argument);
int mtcp_preload_ioctl(int fd, unsigned long request, uintptr_t argument);
