// Exports Swift cannot declare: the variadic fcntl and ioctl, and glibc's fortified variants
// (_FORTIFY_SOURCE builds call __read_chk instead of read, and so on). Each checks its buffer
// bound as glibc does, then enters the same hook as the plain call.
#define _GNU_SOURCE
#include "CPreload.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern void __chk_fail(void) __attribute__((noreturn));

static inline int dispatch_fcntl(int fd, int command, uintptr_t argument) {
    if (mtcp_fd_entry(fd) == 0) return mtcp_real_fcntl(fd, command, argument);
    return mtcp_preload_fcntl(fd, command, argument);
}

// Every fcntl command takes at most one argument, an int or a pointer: read it as a word.
int fcntl(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    uintptr_t argument = va_arg(arguments, uintptr_t);
    va_end(arguments);
    return dispatch_fcntl(fd, command, argument);
}

int fcntl64(int fd, int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    uintptr_t argument = va_arg(arguments, uintptr_t);
    va_end(arguments);
    return dispatch_fcntl(fd, command, argument);
}

int ioctl(int fd, unsigned long request, ...) {
    va_list arguments;
    va_start(arguments, request);
    uintptr_t argument = va_arg(arguments, uintptr_t);
    va_end(arguments);
    if (mtcp_fd_entry(fd) == 0) return mtcp_real_ioctl(fd, request, argument);
    return mtcp_preload_ioctl(fd, request, argument);
}

ssize_t __read_chk(int fd, void *buffer, size_t count, size_t buffer_length) {
    if (count > buffer_length) __chk_fail();
    return read(fd, buffer, count);
}

ssize_t __recv_chk(int fd, void *buffer, size_t length, size_t buffer_length, int flags) {
    if (length > buffer_length) __chk_fail();
    return recv(fd, buffer, length, flags);
}

ssize_t __recvfrom_chk(int fd, void *buffer, size_t length, size_t buffer_length, int flags,
                       struct sockaddr *address, socklen_t *address_length) {
    if (length > buffer_length) __chk_fail();
    return recvfrom(fd, buffer, length, flags, address, address_length);
}

int __poll_chk(struct pollfd *fds, nfds_t count, int timeout, size_t fds_length) {
    if (fds_length / sizeof(*fds) < count) __chk_fail();
    return poll(fds, count, timeout);
}

int __ppoll_chk(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask,
                size_t fds_length) {
    if (fds_length / sizeof(*fds) < count) __chk_fail();
    return ppoll(fds, count, timeout, mask);
}

// With --no-huge, DPDK's EAL puts its memory in a memfd named "nohuge" mapped MAP_SHARED, and
// takes a private anonymous mapping when memfd_create fails. The library wants the private
// one: after fork a child must get a copy-on-write copy of the EAL's heap, not share the
// parent's (its own port allocates there, and the heap's bookkeeping is per process). Only the
// EAL's own call while the library initializes it is turned away.
int mtcp_dpdk_private_memory = 0;

int memfd_create(const char *name, unsigned int flags) {
    if (mtcp_dpdk_private_memory && name != NULL && strcmp(name, "nohuge") == 0) {
        errno = ENOSYS;
        return -1;
    }
    return mtcp_real_memfd_create(name, flags);
}
