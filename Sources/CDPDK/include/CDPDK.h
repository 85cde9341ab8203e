// The parts of DPDK the PacketIODPDK target uses, behind plain C types: DPDK's headers need
// compiler flags (-march, -include rte_config.h) that Swift's importer should not see, and
// its fast path is inline functions and macros Swift cannot call. Only dpdk.c includes them.
//
// When libdpdk-dev was missing at build time, every function exists but fails with
// -ENOTSUP (mtcp_dpdk_available() returns 0), so the rest of the package builds unchanged.
#ifndef MTCP_CDPDK_H
#define MTCP_CDPDK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// RTE_ETH_RSS_IPV4 | FRAG_IPV4 | NONFRAG_IPV4_TCP | NONFRAG_IPV4_UDP (bits 2-5 in DPDK 22.11's
/// rte_ethdev.h, stable ABI): the flow types the stack's traffic hashes on.
#define MTCP_DPDK_RSS_IPV4_TYPES 0x3cULL

/// The packet sockets (AF_PACKET) of this process bound to interface `ifindex`, ascending, up to
/// `capacity` of them in `fds`; returns how many there are (or -errno). net_af_packet's queues
/// are such sockets, and DPDK does not say which: the caller compares before and after.
int mtcp_dpdk_packet_sockets(int ifindex, int *fds, int capacity);

/// 1 when this build has DPDK, 0 when it was built without libdpdk-dev.
int mtcp_dpdk_available(void);

/// rte_eal_init with these arguments (argv[0] is the program name). Returns 0 or -rte_errno.
/// The calling thread's CPU affinity is restored afterwards: EAL pins it to its main lcore,
/// and threads it creates later would otherwise all inherit that one CPU.
int mtcp_dpdk_eal_init(int argc, char **argv);

/// rte_eal_cleanup.
int mtcp_dpdk_eal_cleanup(void);

/// Text of an rte_errno (or errno) value.
const char *mtcp_dpdk_strerror(int code);

/// Ports the EAL probed.
uint16_t mtcp_dpdk_port_count(void);

/// The port with this device name (e.g. "net_af_packet0", a PCI address). 0 or -errno.
int mtcp_dpdk_port_by_name(const char *name, uint16_t *port);

/// The device name of a port (e.g. "net_af_packet0"), cut to `size` bytes. 0 or -errno.
int mtcp_dpdk_port_name(uint16_t port, char *name, uint32_t size);

/// 1 when the EAL's memory is private to this process (no hugepages, no memory file: a
/// private anonymous mapping, which fork() copies), 0 when it is shared with forked children.
int mtcp_dpdk_memory_is_private(void);

/// Hot-plugs a virtual device into the running EAL (rte_vdev_init): `name` starts with its
/// driver's name ("net_af_packet_c42"), `args` are the driver's arguments ("iface=veth0").
/// The new port is probed but not configured. 0 or -errno.
int mtcp_dpdk_vdev_create(const char *name, const char *args);

/// What a port offers (rte_eth_dev_info_get, rte_eth_macaddr_get, rte_eth_dev_get_mtu).
struct mtcp_dpdk_port_info {
    uint8_t mac[6];
    uint16_t mtu;
    uint16_t max_rx_queues;
    uint16_t max_tx_queues;
    uint16_t reta_size;
    uint8_t hash_key_size;
    /// RTE_ETH_RSS_* types the port can hash on.
    uint64_t rss_types;
    /// 1 when the port can compute IPv4 header and TCP checksums on transmit.
    uint8_t tx_checksum;
    /// 1 when the port can verify IPv4 and TCP checksums on receive.
    uint8_t rx_checksum;
    int32_t socket;
    char driver[32];
};

int mtcp_dpdk_port_info(uint16_t port, struct mtcp_dpdk_port_info *info);

/// How to set a port up.
struct mtcp_dpdk_port_config {
    /// RX/TX queue pairs, one per stack instance.
    uint16_t queues;
    uint16_t rx_descriptors;
    uint16_t tx_descriptors;
    /// Mbufs in each queue's pool; the data room holds `frame_size` bytes after the headroom.
    uint32_t mbufs_per_queue;
    uint32_t frame_size;
    /// Toeplitz key for RSS (NULL: no RSS programming), and the RTE_ETH_RSS_* types wanted.
    const uint8_t *rss_key;
    uint8_t rss_key_length;
    uint64_t rss_types;
    /// Ask for IPv4 and TCP transmit checksum offload (taken only if offered).
    uint8_t tx_checksum;
};

/// What the port set-up got.
struct mtcp_dpdk_port_state {
    /// Each queue's pool (rte_mempool *).
    void *pools[64];
    /// 1 when RSS was programmed with the key; the RSS types in effect.
    uint8_t rss;
    uint64_t rss_types;
    uint8_t tx_checksum;
    /// rte_eth_dev_rss_reta_update result when RSS is on (0, or -errno; -ENOTSUP is fine).
    int32_t reta_result;
};

/// Configures the port with one pool and one RX/TX queue pair per queue, RSS when asked and
/// offered, the transmit checksum offloads when asked and offered, and starts it
/// (promiscuous mode on when the port allows it). 0 or -errno (then the port is left closed).
/// `failed_step` names the call that failed.
int mtcp_dpdk_port_start(
    uint16_t port, const char *name, const struct mtcp_dpdk_port_config *config,
    struct mtcp_dpdk_port_state *state, const char **failed_step);

/// Stops and closes the port and frees its pools.
void mtcp_dpdk_port_close(uint16_t port, struct mtcp_dpdk_port_state *state, uint16_t queues);

/// Receives up to `count` frames on a queue. Single-segment frames go to `mbufs`, with their
/// data and length in `data` and `lengths`; chained (multi-segment) ones are freed and added
/// to `*dropped`. Returns how many went into the arrays.
uint16_t mtcp_dpdk_rx_burst(
    uint16_t port, uint16_t queue, void **mbufs, const void **data, uint16_t *lengths, uint16_t count,
    uint64_t *dropped);

/// Frees `count` mbufs at once (received frames after their burst).
void mtcp_dpdk_free_bulk(void **mbufs, uint32_t count);

/// `count` mbufs from the pool into `mbufs`, all or none: 0 or -ENOBUFS.
int mtcp_dpdk_alloc_bulk(void *pool, void **mbufs, uint32_t count);

/// Where a fresh mbuf's frame starts, and how many bytes fit (`*room`).
void *mtcp_dpdk_mbuf_data(void *mbuf, uint32_t *room);

/// Sets the frame's length; with `tx_checksum`, marks an IPv4 TCP or UDP frame for checksum
/// offload (zero IP checksum, pseudo-header sum in the L4 field, as the NIC expects).
/// Returns 1 when the frame was marked for offload.
int mtcp_dpdk_tx_prepare(void *mbuf, uint16_t length, int tx_checksum);

/// Hands frames to the queue; returns how many it took (the rest stay the caller's).
uint16_t mtcp_dpdk_tx_burst(uint16_t port, uint16_t queue, void **mbufs, uint16_t count);

/// The port's drop counters: imissed + ierrors + rx_nombuf, and oerrors.
int mtcp_dpdk_port_drops(uint16_t port, uint64_t *receive, uint64_t *transmit);

#ifdef __cplusplus
}
#endif

#endif
