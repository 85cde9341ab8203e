// The real libc functions, found with dlsym(RTLD_NEXT) the first time each is needed. Every
// call the library makes for itself goes through these, never through its own exports.
#define _GNU_SOURCE
#include "CPreload.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

int32_t *mtcp_fd_table = NULL;
int mtcp_enabled = 1;

// Recursive: code running under the lock (DPDK drivers while a port starts, the Swift
// runtime) may call a hooked function that takes it again.
static pthread_mutex_t stack_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void mtcp_lock(void) { pthread_mutex_lock(&stack_lock); }
void mtcp_unlock(void) { pthread_mutex_unlock(&stack_lock); }

// The resets run in a fork's child, which has one thread: nobody else can touch the mutexes.
// ThreadSanitizer's shadow memory still holds the parent's threads' reads of them (a driver
// thread waiting for an instance lock while fork held it), and the sanitizer's after-fork
// handling starts only once the hooked fork returns, so the overwrite would be reported as
// a race with a thread that does not exist in this process. Not instrumented for that reason.
#define MTCP_AFTER_FORK_ONLY __attribute__((no_sanitize("thread")))

MTCP_AFTER_FORK_ONLY void mtcp_lock_reset(void) {
    pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    stack_lock = fresh;
}

// Recursive for the same reason as the process lock.
static pthread_mutex_t instance_locks[MTCP_MAX_INSTANCES] = {
    [0 ... MTCP_MAX_INSTANCES - 1] = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP};

void mtcp_instance_lock(int instance) { pthread_mutex_lock(&instance_locks[instance]); }
void mtcp_instance_unlock(int instance) { pthread_mutex_unlock(&instance_locks[instance]); }
MTCP_AFTER_FORK_ONLY void mtcp_instance_locks_reset(void) {
    for (int i = 0; i < MTCP_MAX_INSTANCES; i++) {
        pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
        instance_locks[i] = fresh;
    }
}

static __thread int thread_instance = -1;
int mtcp_thread_instance(void) { return thread_instance; }
void mtcp_set_thread_instance(int instance) { thread_instance = instance; }

// Resolves the next definition of `name` after this library; aborts loudly if libc lacks it
// (a process cannot continue with a missing socket call).
static void *resolve(const char *name) {
    void *function = dlsym(RTLD_NEXT, name);
    if (function == NULL) {
        static const char message[] = "mtcp-preload: cannot resolve a libc function\n";
        syscall(SYS_write, 2, message, sizeof(message) - 1);
        abort();
    }
    return function;
}

#define REAL(name) \
    static __typeof__(name) *real_##name; \
    static inline __typeof__(name) *get_##name(void) { \
        __typeof__(name) *f = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE); \
        if (f == NULL) { \
            f = (__typeof__(name) *)resolve(#name); \
            __atomic_store_n(&real_##name, f, __ATOMIC_RELEASE); \
        } \
        return f; \
    }

REAL(socket)
REAL(bind)
REAL(listen)
REAL(accept4)
REAL(connect)
REAL(read)
REAL(write)
REAL(readv)
REAL(writev)
REAL(recvfrom)
REAL(recvmsg)
REAL(sendto)
REAL(sendmsg)
REAL(sendfile)
REAL(close)
REAL(shutdown)
REAL(getsockname)
REAL(getpeername)
REAL(setsockopt)
REAL(getsockopt)
REAL(fcntl)
REAL(ioctl)
REAL(dup)
REAL(dup2)
REAL(dup3)
REAL(epoll_create1)
REAL(epoll_ctl)
REAL(epoll_pwait)
REAL(ppoll)
REAL(poll)
REAL(select)
REAL(pselect)
REAL(fork)
REAL(memfd_create)

int mtcp_real_socket(int d, int t, int p) { return get_socket()(d, t, p); }
int mtcp_real_bind(int fd, const struct sockaddr *a, socklen_t l) { return get_bind()(fd, a, l); }
int mtcp_real_listen(int fd, int b) { return get_listen()(fd, b); }
int mtcp_real_accept4(int fd, struct sockaddr *a, socklen_t *l, int f) { return get_accept4()(fd, a, l, f); }
int mtcp_real_connect(int fd, const struct sockaddr *a, socklen_t l) { return get_connect()(fd, a, l); }
ssize_t mtcp_real_read(int fd, void *b, size_t n) { return get_read()(fd, b, n); }
ssize_t mtcp_real_write(int fd, const void *b, size_t n) { return get_write()(fd, b, n); }
ssize_t mtcp_real_readv(int fd, const struct iovec *v, int n) { return get_readv()(fd, v, n); }
ssize_t mtcp_real_writev(int fd, const struct iovec *v, int n) { return get_writev()(fd, v, n); }
ssize_t mtcp_real_recvfrom(int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l) {
    return get_recvfrom()(fd, b, n, f, a, l);
}
ssize_t mtcp_real_recvmsg(int fd, struct msghdr *m, int f) { return get_recvmsg()(fd, m, f); }
ssize_t mtcp_real_sendto(int fd, const void *b, size_t n, int f, const struct sockaddr *a, socklen_t l) {
    return get_sendto()(fd, b, n, f, a, l);
}
ssize_t mtcp_real_sendmsg(int fd, const struct msghdr *m, int f) { return get_sendmsg()(fd, m, f); }
ssize_t mtcp_real_sendfile(int o, int i, off_t *off, size_t n) { return get_sendfile()(o, i, off, n); }
int mtcp_real_close(int fd) { return get_close()(fd); }
int mtcp_real_shutdown(int fd, int how) { return get_shutdown()(fd, how); }
int mtcp_real_getsockname(int fd, struct sockaddr *a, socklen_t *l) { return get_getsockname()(fd, a, l); }
int mtcp_real_getpeername(int fd, struct sockaddr *a, socklen_t *l) { return get_getpeername()(fd, a, l); }
int mtcp_real_setsockopt(int fd, int level, int name, const void *v, socklen_t l) {
    return get_setsockopt()(fd, level, name, v, l);
}
int mtcp_real_getsockopt(int fd, int level, int name, void *v, socklen_t *l) {
    return get_getsockopt()(fd, level, name, v, l);
}
int mtcp_real_fcntl(int fd, int command, uintptr_t argument) { return get_fcntl()(fd, command, argument); }
int mtcp_real_ioctl(int fd, unsigned long request, uintptr_t argument) { return get_ioctl()(fd, request, argument); }
int mtcp_real_dup(int fd) { return get_dup()(fd); }
int mtcp_real_dup2(int fd, int target) { return get_dup2()(fd, target); }
int mtcp_real_dup3(int fd, int target, int flags) { return get_dup3()(fd, target, flags); }
int mtcp_real_epoll_create1(int flags) { return get_epoll_create1()(flags); }
int mtcp_real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *e) { return get_epoll_ctl()(epfd, op, fd, e); }
int mtcp_real_epoll_pwait(int epfd, struct epoll_event *e, int max, int timeout, const sigset_t *mask) {
    return get_epoll_pwait()(epfd, e, max, timeout, mask);
}
int mtcp_real_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask) {
    return get_ppoll()(fds, n, t, mask);
}
int mtcp_real_poll(struct pollfd *fds, nfds_t n, int timeout) { return get_poll()(fds, n, timeout); }
int mtcp_real_select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t) { return get_select()(n, r, w, e, t); }
int mtcp_real_pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *m) {
    return get_pselect()(n, r, w, e, t, m);
}
pid_t mtcp_real_fork(void) { return get_fork()(); }
int mtcp_real_memfd_create(const char *name, unsigned int flags) { return get_memfd_create()(name, flags); }

int mtcp_eventfd(void) { return mtcp_move_private(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

extern int mtcp_shim_private_fd_floor;
extern int mtcp_shim_move_to_private_range(int fd);

int mtcp_move_private(int fd) { return mtcp_shim_move_to_private_range(fd); }

void mtcp_set_private_fd_floor(void) {
    // The upper part of the program's descriptor range: far from the low numbers programs
    // pick themselves, below the limit so the kernel accepts them.
    struct rlimit limit;
    int floor = 768;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur > 64) {
        floor = (int)(limit.rlim_cur > 1024 ? limit.rlim_cur - 256 : limit.rlim_cur * 3 / 4);
    }
    mtcp_shim_private_fd_floor = floor;
}

int mtcp_epoll_add_tagged(int epfd, int fd, uint32_t events, uint64_t tag) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = tag;
    return mtcp_real_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

void mtcp_block_all_signals(void) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

int mtcp_start_thread(void *(*body)(void *), void *context) {
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    // Born with every signal blocked (the mask is inherited): a signal the application expects
    // in its own blocked call (EINTR) must never land on the library's thread, not even
    // before that thread first runs.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    int result = pthread_create(&thread, &attributes, body, context);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    pthread_attr_destroy(&attributes);
    return result;
}

char **mtcp_saved_settings = NULL;

// Keeps a copy of the MTCP_* variables as the program started: programs may clear their
// environment before they open sockets (nginx does for its workers), and the settings are
// parsed only when the first socket needs the stack.
static void save_settings(void) {
    extern char **environ;
    size_t count = 0;
    for (char **entry = environ; entry != NULL && *entry != NULL; entry++) {
        if (strncmp(*entry, "MTCP_", 5) == 0) count++;
    }
    char **saved = calloc(count + 1, sizeof(char *));
    if (saved == NULL) return;
    size_t k = 0;
    for (char **entry = environ; entry != NULL && *entry != NULL && k < count; entry++) {
        if (strncmp(*entry, "MTCP_", 5) == 0) saved[k++] = strdup(*entry);
    }
    mtcp_saved_settings = saved;
}

// Runs when the library loads: the switch and the descriptor table (4 MiB of address space,
// touched only where fds are used).
__attribute__((constructor)) static void mtcp_preload_load(void) {
    const char *enable = getenv("MTCP_ENABLE");
    if (enable != NULL && enable[0] == '0' && enable[1] == '\0') {
        mtcp_enabled = 0;
        return;
    }
    void *table = mmap(NULL, sizeof(int32_t) * MTCP_FD_TABLE_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (table != MAP_FAILED) mtcp_fd_table = (int32_t *)table;
    save_settings();
}
