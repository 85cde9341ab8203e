// Out-of-line wrappers for variadic calls (ioctl, fcntl) and struct-heavy setup calls.
#define _GNU_SOURCE
#include "CShim.h"

#include <arpa/inet.h>
#include <string.h>
#include <linux/filter.h>

int mtcp_shim_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Fills an ifreq with a name, refusing names that do not fit.
static int fill_ifreq(struct ifreq *req, const char *name) {
    memset(req, 0, sizeof(*req));
    size_t length = strlen(name);
    if (length >= IFNAMSIZ) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(req->ifr_name, name, length);
    return 0;
}

int mtcp_shim_if_index(int fd, const char *name) {
    struct ifreq req;
    if (fill_ifreq(&req, name) < 0 || ioctl(fd, SIOCGIFINDEX, &req) < 0) return -1;
    return req.ifr_ifindex;
}

int mtcp_shim_if_hwaddr(int fd, const char *name, uint8_t out[6]) {
    struct ifreq req;
    if (fill_ifreq(&req, name) < 0 || ioctl(fd, SIOCGIFHWADDR, &req) < 0) return -1;
    memcpy(out, req.ifr_hwaddr.sa_data, 6);
    return 0;
}

int mtcp_shim_if_mtu(int fd, const char *name) {
    struct ifreq req;
    if (fill_ifreq(&req, name) < 0 || ioctl(fd, SIOCGIFMTU, &req) < 0) return -1;
    return req.ifr_mtu;
}

int mtcp_shim_if_flags(int fd, const char *name) {
    struct ifreq req;
    if (fill_ifreq(&req, name) < 0 || ioctl(fd, SIOCGIFFLAGS, &req) < 0) return -1;
    return req.ifr_flags & 0xffff;
}

int mtcp_shim_if_set_flags(int fd, const char *name, int flags) {
    struct ifreq req;
    if (fill_ifreq(&req, name) < 0) return -1;
    req.ifr_flags = (short)flags;
    return ioctl(fd, SIOCSIFFLAGS, &req);
}

int mtcp_shim_tun_set_iff(int fd, const char *name, int flags, char *actual_name) {
    struct ifreq req;
    if (fill_ifreq(&req, name) < 0) return -1;
    req.ifr_flags = (short)flags;
    if (ioctl(fd, TUNSETIFF, &req) < 0) return -1;
    if (actual_name) memcpy(actual_name, req.ifr_name, IFNAMSIZ);
    return 0;
}

int mtcp_shim_private_fd_floor = 0;

int mtcp_shim_move_to_private_range(int fd) {
    if (fd < 0 || mtcp_shim_private_fd_floor <= 0 || fd >= mtcp_shim_private_fd_floor) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, mtcp_shim_private_fd_floor);
    if (moved < 0) return fd;
    close(fd);
    return moved;
}

int mtcp_shim_packet_socket(int protocol) {
    return mtcp_shim_move_to_private_range(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons((uint16_t)protocol)));
}

int mtcp_shim_packet_bind(int fd, int ifindex, int protocol) {
    struct sockaddr_ll address;
    memset(&address, 0, sizeof(address));
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons((uint16_t)protocol);
    address.sll_ifindex = ifindex;
    return bind(fd, (struct sockaddr *)&address, sizeof(address));
}

int mtcp_shim_packet_all_multicast(int fd, int ifindex) {
    struct packet_mreq request;
    memset(&request, 0, sizeof(request));
    request.mr_ifindex = ifindex;
    request.mr_type = PACKET_MR_ALLMULTI;
    return setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &request, sizeof(request));
}

int mtcp_shim_setsockopt_int(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof(value));
}

int mtcp_shim_packet_rx_ring_v3(int fd, unsigned block_size, unsigned block_count, unsigned frame_size,
                                unsigned retire_timeout_ms) {
    if (mtcp_shim_setsockopt_int(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V3) < 0) return -1;
    struct tpacket_req3 req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_count;
    req.tp_retire_blk_tov = retire_timeout_ms;
    req.tp_feature_req_word = TP_FT_REQ_FILL_RXHASH;
    return setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req));
}

int mtcp_shim_packet_rx_ring_v2(int fd, unsigned block_size, unsigned block_count, unsigned frame_size) {
    if (mtcp_shim_setsockopt_int(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2) < 0) return -1;
    struct tpacket_req req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_count;
    return setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req));
}

int mtcp_shim_packet_tx_ring_v2(int fd, unsigned block_size, unsigned block_count, unsigned frame_size) {
    if (mtcp_shim_setsockopt_int(fd, SOL_PACKET, PACKET_VERSION, TPACKET_V2) < 0) return -1;
    struct tpacket_req req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = block_size;
    req.tp_block_nr = block_count;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_count;
    return setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req));
}

int mtcp_shim_packet_fanout_port_sum(int fd, uint16_t group) {
    // Classic BPF choosing the group member for TCP over IPv4 or IPv6: ((source port ^
    // destination port) * multiplier) >> 16, which the kernel takes modulo the member count;
    // anything else (IPv6 with extension headers before TCP included) goes to member 0. It
    // is the same in both directions, the multiply mixes every port bit into the result
    // (Linux's connect() steps ports by 2, so a plain sum would not spread), and a program
    // can pick a local port that lands its replies on the member of its choice, which no
    // kernel flow hash allows (mtcp_shim_port_mix computes the same value).
    // Fanout runs the program on the packet as the stack receives it: loads are relative to
    // the network header, and the EtherType comes from the ancillary protocol field.
    struct sock_filter code[] = {
        {0x28, 0, 0, SKF_AD_OFF + SKF_AD_PROTOCOL}, // 0  ldh proto           EtherType
        {0x15, 0, 4, 0x0800},                       // 1  jeq #IPv4, else -> 6
        {0x30, 0, 0, 9},                            // 2  ldb [9]             IP protocol
        {0x15, 0, 14, 6},                           // 3  jeq #TCP, else -> ret #0
        {0xb1, 0, 0, 0},                            // 4  ldxb 4*([0]&0xf)    X = IP header length
        {0x05, 0, 0, 4},                            // 5  ja 10
        {0x15, 0, 11, 0x86DD},                      // 6  jeq #IPv6, else -> ret #0
        {0x30, 0, 0, 6},                            // 7  ldb [6]             next header
        {0x15, 0, 9, 6},                            // 8  jeq #TCP, else -> ret #0
        {0x01, 0, 0, 40},                           // 9  ldx #40             X = IPv6 header length
        {0x48, 0, 0, 0},                            // 10 ldh [x+0]           source port
        {0x02, 0, 0, 0},                            // 11 st M[0]
        {0x48, 0, 0, 2},                            // 12 ldh [x+2]           destination port
        {0x61, 0, 0, 0},                            // 13 ldx M[0]
        {0xac, 0, 0, 0},                            // 14 xor x
        {0x24, 0, 0, MTCP_PORT_MIX_MULTIPLIER},     // 15 mul #multiplier
        {0x74, 0, 0, 16},                           // 16 rsh #16
        {0x16, 0, 0, 0},                            // 17 ret a
        {0x06, 0, 0, 0},                            // 18 ret #0
    };
    struct sock_fprog program = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    if (mtcp_shim_setsockopt_int(fd, SOL_PACKET, PACKET_FANOUT, (int)((uint32_t)group | ((uint32_t)PACKET_FANOUT_CBPF << 16))) < 0)
        return -1;
    return setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &program, sizeof(program));
}

int mtcp_shim_packet_fanout(int fd, uint16_t group, uint16_t mode) {
    return mtcp_shim_setsockopt_int(fd, SOL_PACKET, PACKET_FANOUT, (int)((uint32_t)group | ((uint32_t)mode << 16)));
}

int mtcp_shim_packet_statistics_v3(int fd, uint32_t *packets, uint32_t *drops) {
    struct tpacket_stats_v3 stats;
    memset(&stats, 0, sizeof(stats));
    socklen_t length = sizeof(stats);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &length) < 0) return -1;
    if (packets) *packets = stats.tp_packets;
    if (drops) *drops = stats.tp_drops;
    return 0;
}

long mtcp_shim_packet_kick(int fd) { return (long)send(fd, NULL, 0, MSG_DONTWAIT); }

void *mtcp_shim_mmap_shared(int fd, size_t length, int extra_flags) {
    void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED | extra_flags, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int mtcp_shim_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event;
    memset(&event, 0, sizeof(event));
    event.events = events;
    event.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &event);
}

int mtcp_shim_timerfd_set_ns(int fd, uint64_t initial_ns, uint64_t interval_ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof(spec));
    spec.it_value.tv_sec = (time_t)(initial_ns / 1000000000ull);
    spec.it_value.tv_nsec = (long)(initial_ns % 1000000000ull);
    spec.it_interval.tv_sec = (time_t)(interval_ns / 1000000000ull);
    spec.it_interval.tv_nsec = (long)(interval_ns % 1000000000ull);
    return timerfd_settime(fd, 0, &spec, NULL);
}

int mtcp_shim_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

void *mtcp_shim_map_shared_anonymous(size_t length) {
    void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

// MARK: eBPF

#include <linux/bpf.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>

static long bpf_call(int command, union bpf_attr *attr) {
    return syscall(__NR_bpf, command, attr, sizeof(*attr));
}

int mtcp_shim_bpf_map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                             uint32_t flags) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = type;
    attr.key_size = key_size;
    attr.value_size = value_size;
    attr.max_entries = max_entries;
    attr.map_flags = flags;
    int fd = (int)bpf_call(BPF_MAP_CREATE, &attr);
    return fd < 0 ? fd : mtcp_shim_move_to_private_range(fd);
}

static int bpf_element(int command, int fd, const void *key, void *value, uint64_t flags) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = (uint32_t)fd;
    attr.key = (uint64_t)(uintptr_t)key;
    attr.value = (uint64_t)(uintptr_t)value;
    attr.flags = flags;
    return (int)bpf_call(command, &attr);
}

int mtcp_shim_bpf_map_update(int fd, const void *key, const void *value, uint64_t flags) {
    return bpf_element(BPF_MAP_UPDATE_ELEM, fd, key, (void *)value, flags);
}

int mtcp_shim_bpf_map_lookup(int fd, const void *key, void *value) {
    return bpf_element(BPF_MAP_LOOKUP_ELEM, fd, key, value, 0);
}

int mtcp_shim_bpf_map_delete(int fd, const void *key) { return bpf_element(BPF_MAP_DELETE_ELEM, fd, key, NULL, 0); }

int mtcp_shim_bpf_map_next_key(int fd, const void *key, void *next) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_fd = (uint32_t)fd;
    attr.key = (uint64_t)(uintptr_t)key;
    attr.next_key = (uint64_t)(uintptr_t)next;
    return (int)bpf_call(BPF_MAP_GET_NEXT_KEY, &attr);
}

int mtcp_shim_bpf_obj_pin(int fd, const char *path) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.pathname = (uint64_t)(uintptr_t)path;
    attr.bpf_fd = (uint32_t)fd;
    return (int)bpf_call(BPF_OBJ_PIN, &attr);
}

int mtcp_shim_bpf_obj_get(const char *path) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.pathname = (uint64_t)(uintptr_t)path;
    int fd = (int)bpf_call(BPF_OBJ_GET, &attr);
    return fd < 0 ? fd : mtcp_shim_move_to_private_range(fd);
}

int mtcp_shim_bpf_load_program(uint32_t type, const void *instructions, uint32_t count, char *log,
                               uint32_t log_size) {
    static const char license[] = "GPL";
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = type;
    attr.insns = (uint64_t)(uintptr_t)instructions;
    attr.insn_cnt = count;
    attr.license = (uint64_t)(uintptr_t)license;
    if (log && log_size > 0) {
        log[0] = 0;
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = log_size;
        attr.log_level = 1;
    }
    int fd = (int)bpf_call(BPF_PROG_LOAD, &attr);
    if (fd < 0 && log && log_size > 0 && errno == ENOSPC) {
        // The log did not fit: load again without it, for the fd.
        attr.log_buf = 0;
        attr.log_size = 0;
        attr.log_level = 0;
        fd = (int)bpf_call(BPF_PROG_LOAD, &attr);
    }
    return fd < 0 ? fd : mtcp_shim_move_to_private_range(fd);
}

int mtcp_shim_bpf_load_socket_filter(const void *instructions, uint32_t count, char *log, uint32_t log_size) {
    return mtcp_shim_bpf_load_program(BPF_PROG_TYPE_SOCKET_FILTER, instructions, count, log, log_size);
}

int mtcp_shim_bpf_link_create(int program, int ifindex, uint32_t attach_type) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.link_create.prog_fd = (uint32_t)program;
    attr.link_create.target_ifindex = (uint32_t)ifindex;
    attr.link_create.attach_type = attach_type;
    int fd = (int)bpf_call(BPF_LINK_CREATE, &attr);
    return fd < 0 ? fd : mtcp_shim_move_to_private_range(fd);
}

int mtcp_shim_bpf_test_run(int fd, const void *frame, uint32_t length, uint32_t *result) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.test.prog_fd = (uint32_t)fd;
    attr.test.data_in = (uint64_t)(uintptr_t)frame;
    attr.test.data_size_in = length;
    attr.test.repeat = 1;
    if (bpf_call(BPF_PROG_TEST_RUN, &attr) < 0) return -1;
    *result = attr.test.retval;
    return 0;
}

int mtcp_shim_attach_bpf(int fd, int program) {
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, &program, sizeof(program));
}

int mtcp_shim_fd_of_process(int pid, int fd) {
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) return -1;
    int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    int saved = errno;
    close(pidfd);
    errno = saved;
    return copy < 0 ? copy : mtcp_shim_move_to_private_range(copy);
}

struct lock_waiter {
    int fd;
    long offset;
    void (*granted)(void *);
    void *context;
};

static void *wait_for_lock(void *argument) {
    struct lock_waiter waiter = *(struct lock_waiter *)argument;
    free(argument);
    // EDEADLK: the kernel's deadlock detection counts the process's other locks; try again.
    while (mtcp_shim_lock_byte(waiter.fd, waiter.offset, 1, 0) != 0) usleep(10000);
    waiter.granted(waiter.context);
    return NULL;
}

int mtcp_shim_wait_for_lock_thread(int fd, long offset, void (*granted)(void *), void *context) {
    struct lock_waiter *waiter = malloc(sizeof(*waiter));
    if (!waiter) return ENOMEM;
    *waiter = (struct lock_waiter){fd, offset, granted, context};
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    int result = pthread_create(&thread, &attributes, wait_for_lock, waiter);
    pthread_attr_destroy(&attributes);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (result != 0) free(waiter);
    return result;
}

int mtcp_shim_lock_byte(int fd, long offset, int wait, int unlock) {
    struct flock lock;
    memset(&lock, 0, sizeof(lock));
    lock.l_type = unlock ? F_UNLCK : F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = offset;
    lock.l_len = 1;
    int result;
    do {
        result = fcntl(fd, wait ? F_SETLKW : F_SETLK, &lock);
    } while (result < 0 && errno == EINTR && wait);
    return result;
}
