/* Counts malloc calls of a process (LD_PRELOAD) and prints the total at exit, so a test can
 * show that the stack's packet path allocates nothing: the count must not grow with the
 * number of packets. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

static atomic_long calls;
static void *(*next_malloc)(size_t);

void *malloc(size_t size) {
    if (!next_malloc) next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    return next_malloc(size);
}

__attribute__((destructor)) static void report(void) {
    char line[64];
    int length = snprintf(line, sizeof line, "malloc-count: %ld\n", (long)atomic_load(&calls));
    if (length > 0) (void)!write(2, line, (size_t)length);
}
