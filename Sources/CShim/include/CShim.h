// CShim: the Linux interfaces Swift's Glibc module does not show (epoll, eventfd, timerfd,
// linux/if_packet.h, TUN ioctls) and thin non-variadic wrappers for what Swift cannot call
// (ioctl, fcntl, errno, function-like macros). Shared by PacketIO and the layers above it.
#ifndef MTCP_CSHIM_H
#define MTCP_CSHIM_H

// _GNU_SOURCE is defined by the .c file only: defining it here would make Swift parse the
// libc headers under other feature macros than its Glibc module (fd_set then conflicts when
// a file imports both). Nothing declared here needs it.

#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

// MARK: errno and descriptors

/// The calling thread's errno (Swift cannot read the TLS macro reliably across modules).
static inline int mtcp_shim_errno(void) { return errno; }
/// Sets the calling thread's errno.
static inline void mtcp_shim_set_errno(int value) { errno = value; }

/// Adds O_NONBLOCK to a descriptor; 0 or -1 with errno.
int mtcp_shim_set_nonblocking(int fd);

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC).
static inline uint64_t mtcp_shim_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// MARK: interface ioctls (fd: any socket)

/// The interface index of `name`, or -1 with errno (ENODEV when there is none).
int mtcp_shim_if_index(int fd, const char *name);
/// Copies the interface's 6-byte hardware address into `out`; 0 or -1 with errno.
int mtcp_shim_if_hwaddr(int fd, const char *name, uint8_t out[6]);
/// The interface MTU, or -1 with errno.
int mtcp_shim_if_mtu(int fd, const char *name);
/// The interface flags (IFF_UP...), or -1 with errno.
int mtcp_shim_if_flags(int fd, const char *name);
/// Sets the interface flags; 0 or -1 with errno.
int mtcp_shim_if_set_flags(int fd, const char *name, int flags);

/// TUNSETIFF on an open /dev/net/tun: attaches to (or creates) `name` with `flags`
/// (IFF_TAP | IFF_NO_PI ...). The kernel's chosen name is written to `actual_name`
/// (IFNAMSIZ bytes) when it is not NULL. 0 or -1 with errno.
int mtcp_shim_tun_set_iff(int fd, const char *name, int flags, char *actual_name);

// MARK: AF_PACKET sockets

/// socket(AF_PACKET, SOCK_RAW, htons(protocol)); protocol in host order (0: receive nothing).
int mtcp_shim_packet_socket(int protocol);
/// Where descriptors the stack makes for itself go (0: anywhere). A library living inside
/// another program sets it high, so the program's own fd numbers (dup2 onto 3, a shell's
/// `exec 3<>`) never land on them.
extern int mtcp_shim_private_fd_floor;
/// Moves `fd` to the lowest free number at or above the floor (close-on-exec); `fd` itself
/// when there is no floor or the move fails.
int mtcp_shim_move_to_private_range(int fd);
/// Binds a packet socket to an interface and protocol (host order); 0 or -1 with errno.
int mtcp_shim_packet_bind(int fd, int ifindex, int protocol);
/// Receive every multicast frame on the interface (PACKET_MR_ALLMULTI): IPv6 neighbour
/// solicitations go to solicited-node groups a NIC would otherwise filter out.
int mtcp_shim_packet_all_multicast(int fd, int ifindex);
/// setsockopt(fd, level, name, &value, sizeof(int)); 0 or -1 with errno.
int mtcp_shim_setsockopt_int(int fd, int level, int name, int value);
/// Sets PACKET_VERSION TPACKET_V3 and a PACKET_RX_RING; 0 or -1 with errno.
int mtcp_shim_packet_rx_ring_v3(int fd, unsigned block_size, unsigned block_count, unsigned frame_size,
                                unsigned retire_timeout_ms);
/// Sets PACKET_VERSION TPACKET_V2 and a PACKET_TX_RING; 0 or -1 with errno.
int mtcp_shim_packet_rx_ring_v2(int fd, unsigned block_size, unsigned block_count, unsigned frame_size);
int mtcp_shim_packet_tx_ring_v2(int fd, unsigned block_size, unsigned block_count, unsigned frame_size);
/// Joins fanout `group` with `mode` (PACKET_FANOUT_* | flags); 0 or -1 with errno.
int mtcp_shim_packet_fanout(int fd, uint16_t group, uint16_t mode);
/// Joins fanout `group` steered by a classic BPF program: member mtcp_shim_port_mix(source
/// port, destination port) mod members for IPv4 TCP, member 0 for everything else.
int mtcp_shim_packet_fanout_port_sum(int fd, uint16_t group);
#define MTCP_PORT_MIX_MULTIPLIER 40503u
/// The steering value of a TCP flow's ports (symmetric), as the fanout program computes it.
static inline uint32_t mtcp_shim_port_mix(uint16_t a, uint16_t b) {
    return (((uint32_t)(a ^ b)) * MTCP_PORT_MIX_MULTIPLIER) >> 16;
}
/// Reads and resets PACKET_STATISTICS of a TPACKET_V3 socket; 0 or -1 with errno.
int mtcp_shim_packet_statistics_v3(int fd, uint32_t *packets, uint32_t *drops);
/// Kicks a TX ring: send(fd, NULL, 0, MSG_DONTWAIT). Returns bytes queued or -1 with errno.
long mtcp_shim_packet_kick(int fd);

/// mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED | extra_flags, fd, 0), or NULL.
void *mtcp_shim_mmap_shared(int fd, size_t length, int extra_flags);

// MARK: TPACKET_V3 receive blocks and frames
// The kernel and user space hand blocks back and forth through block_status: acquire on
// reading it, release on returning it, so the frame bytes are ordered with the flag.

/// TPACKET_ALIGN: rounds a ring offset up to the ring's 16-byte alignment.
static inline size_t mtcp_shim_tpacket_align(size_t offset) { return TPACKET_ALIGN(offset); }
/// Bytes from a TPACKET_V3 frame header to its sockaddr_ll.
static inline size_t mtcp_shim_v3_sockaddr_offset(void) { return TPACKET_ALIGN(sizeof(struct tpacket3_hdr)); }

static inline uint32_t mtcp_shim_v3_block_status(const void *block) {
    const struct tpacket_block_desc *b = (const struct tpacket_block_desc *)block;
    return __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
}
static inline void mtcp_shim_v3_block_release(void *block) {
    struct tpacket_block_desc *b = (struct tpacket_block_desc *)block;
    __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}
static inline uint32_t mtcp_shim_v3_block_packets(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.num_pkts;
}
static inline uint32_t mtcp_shim_v3_block_first_offset(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.offset_to_first_pkt;
}
static inline uint32_t mtcp_shim_v3_frame_next_offset(const void *frame) {
    return ((const struct tpacket3_hdr *)frame)->tp_next_offset;
}
static inline uint32_t mtcp_shim_v3_frame_status(const void *frame) {
    return ((const struct tpacket3_hdr *)frame)->tp_status;
}
static inline uint32_t mtcp_shim_v3_frame_snaplen(const void *frame) {
    return ((const struct tpacket3_hdr *)frame)->tp_snaplen;
}
static inline uint32_t mtcp_shim_v3_frame_len(const void *frame) {
    return ((const struct tpacket3_hdr *)frame)->tp_len;
}
static inline uint32_t mtcp_shim_v3_frame_mac_offset(const void *frame) {
    return ((const struct tpacket3_hdr *)frame)->tp_mac;
}
static inline uint32_t mtcp_shim_v3_frame_rxhash(const void *frame) {
    return ((const struct tpacket3_hdr *)frame)->hv1.tp_rxhash;
}
/// The frame's sll_pkttype (PACKET_HOST, PACKET_OUTGOING...): the sockaddr_ll follows the
/// aligned header.
static inline uint8_t mtcp_shim_v3_frame_pkttype(const void *frame) {
    const struct sockaddr_ll *sll =
        (const struct sockaddr_ll *)((const uint8_t *)frame + mtcp_shim_v3_sockaddr_offset());
    return sll->sll_pkttype;
}

// MARK: TPACKET_V2 transmit frames

/// Where frame data starts in a TX frame (without PACKET_TX_HAS_OFF).
static inline size_t mtcp_shim_v2_tx_data_offset(void) { return TPACKET_ALIGN(sizeof(struct tpacket2_hdr)); }
static inline uint32_t mtcp_shim_v2_frame_status(const void *frame) {
    return __atomic_load_n(&((const struct tpacket2_hdr *)frame)->tp_status, __ATOMIC_ACQUIRE);
}
static inline void mtcp_shim_v2_frame_set_status(void *frame, uint32_t status) {
    __atomic_store_n(&((struct tpacket2_hdr *)frame)->tp_status, status, __ATOMIC_RELEASE);
}
/// TPACKET_V2 receive frames: length on the wire, bytes captured, where the Ethernet header
/// starts, and the packet type from the sockaddr_ll that follows the header.
static inline uint32_t mtcp_shim_v2_frame_len(const void *frame) { return ((const struct tpacket2_hdr *)frame)->tp_len; }
static inline uint32_t mtcp_shim_v2_frame_snaplen(const void *frame) {
    return ((const struct tpacket2_hdr *)frame)->tp_snaplen;
}
static inline uint32_t mtcp_shim_v2_frame_mac_offset(const void *frame) {
    return ((const struct tpacket2_hdr *)frame)->tp_mac;
}
static inline uint8_t mtcp_shim_v2_frame_pkttype(const void *frame) {
    const struct sockaddr_ll *address =
        (const struct sockaddr_ll *)((const uint8_t *)frame + TPACKET_ALIGN(sizeof(struct tpacket2_hdr)));
    return address->sll_pkttype;
}
/// Sets the frame length and hands the frame to the kernel (TP_STATUS_SEND_REQUEST).
static inline void mtcp_shim_v2_frame_send_request(void *frame, uint32_t length) {
    struct tpacket2_hdr *h = (struct tpacket2_hdr *)frame;
    h->tp_len = length;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
}

// MARK: event descriptors (for the layers above)

/// epoll_ctl with a 64-bit user value; 0 or -1 with errno.
int mtcp_shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// timerfd_settime with a one-shot or periodic relative time in nanoseconds (0: disarm).
int mtcp_shim_timerfd_set_ns(int fd, uint64_t initial_ns, uint64_t interval_ns);
/// Pins the calling thread to one CPU; 0 or -1 with errno.
int mtcp_shim_pin_to_cpu(int cpu);

// MARK: atomics over shared memory (tables shared by forked processes)

/// Sequentially consistent load of a 32-bit value other processes may change.
static inline int32_t mtcp_shim_atomic_load_i32(const int32_t *address) {
    return __atomic_load_n(address, __ATOMIC_SEQ_CST);
}
/// Sequentially consistent store.
static inline void mtcp_shim_atomic_store_i32(int32_t *address, int32_t value) {
    __atomic_store_n(address, value, __ATOMIC_SEQ_CST);
}
/// Replaces `expected` with `desired`; true when it did (the value was `expected`).
static inline _Bool mtcp_shim_atomic_cas_i32(int32_t *address, int32_t expected, int32_t desired) {
    return __atomic_compare_exchange_n(address, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
/// Adds `delta`; returns the value before.
static inline int32_t mtcp_shim_atomic_add_i32(int32_t *address, int32_t delta) {
    return __atomic_fetch_add(address, delta, __ATOMIC_SEQ_CST);
}
/// 64-bit loads and stores with acquire and release order, and fences: the sequence locks of
/// the statistics region (read by other processes) and the capture ring's positions.
static inline uint64_t mtcp_shim_load_acquire_u64(const void *address) {
    return __atomic_load_n((const uint64_t *)address, __ATOMIC_ACQUIRE);
}
static inline void mtcp_shim_store_release_u64(void *address, uint64_t value) {
    __atomic_store_n((uint64_t *)address, value, __ATOMIC_RELEASE);
}
static inline void mtcp_shim_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
static inline void mtcp_shim_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
/// A zeroed MAP_SHARED|MAP_ANONYMOUS mapping of `length` bytes that fork() children share;
/// NULL on failure (errno set).
void *mtcp_shim_map_shared_anonymous(size_t length);

// MARK: eBPF (flow steering between processes that share a link)

/// BPF_MAP_CREATE; the map's fd (in the private fd range) or -1 with errno.
int mtcp_shim_bpf_map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                             uint32_t flags);
/// BPF_MAP_UPDATE_ELEM with BPF_ANY (0), BPF_NOEXIST (1) or BPF_EXIST (2); 0 or -1 with errno.
int mtcp_shim_bpf_map_update(int fd, const void *key, const void *value, uint64_t flags);
/// BPF_MAP_LOOKUP_ELEM; 0 or -1 with errno (ENOENT: no such key).
int mtcp_shim_bpf_map_lookup(int fd, const void *key, void *value);
/// BPF_MAP_DELETE_ELEM; 0 or -1 with errno.
int mtcp_shim_bpf_map_delete(int fd, const void *key);
/// BPF_MAP_GET_NEXT_KEY (key NULL: the first); 0 or -1 with errno (ENOENT: no more).
int mtcp_shim_bpf_map_next_key(int fd, const void *key, void *next);
/// BPF_OBJ_PIN of `fd` at `path` (a bpf file system); 0 or -1 with errno.
int mtcp_shim_bpf_obj_pin(int fd, const char *path);
/// BPF_OBJ_GET: an fd for the object pinned at `path`, or -1 with errno.
int mtcp_shim_bpf_obj_get(const char *path);
/// BPF_PROG_LOAD of a socket filter of `count` instructions (8 bytes each, license GPL);
/// the verifier's log goes to `log` when given. The program's fd or -1 with errno.
int mtcp_shim_bpf_load_socket_filter(const void *instructions, uint32_t count, char *log, uint32_t log_size);
/// BPF_PROG_LOAD of a program of type `type` (BPF_PROG_TYPE_*), as the socket filter above.
int mtcp_shim_bpf_load_program(uint32_t type, const void *instructions, uint32_t count, char *log,
                               uint32_t log_size);
/// BPF_LINK_CREATE attaching `program` to interface `ifindex` at `attach_type` (BPF_TCX_INGRESS
/// is 46, Linux 6.6); the link's fd (the program stays attached while some process holds it)
/// or -1 with errno.
int mtcp_shim_bpf_link_create(int program, int ifindex, uint32_t attach_type);
/// BPF_PROG_TEST_RUN of program `fd` over one frame; 0 (and the return value) or -1 with errno.
int mtcp_shim_bpf_test_run(int fd, const void *frame, uint32_t length, uint32_t *result);
/// SO_ATTACH_BPF: socket `fd` keeps only what program `program` accepts.
int mtcp_shim_attach_bpf(int fd, int program);
/// A copy of process `pid`'s descriptor `fd` (pidfd_open + pidfd_getfd, in the private fd
/// range, close-on-exec); -1 with errno.
int mtcp_shim_fd_of_process(int pid, int fd);
/// Starts a detached thread, with every signal blocked, that waits (F_SETLKW, retried) for a
/// POSIX write lock on byte `offset` of `fd` and then calls `granted(context)` once.
int mtcp_shim_wait_for_lock_thread(int fd, long offset, void (*granted)(void *), void *context);
/// fcntl(F_SETLK / F_SETLKW) of a POSIX write lock on one byte (`wait`: block until granted),
/// or F_UNLCK; 0 or -1 with errno. POSIX locks belong to the process: not inherited by fork,
/// released when it dies.
int mtcp_shim_lock_byte(int fd, long offset, int wait, int unlock);

#endif
