// Thin wrappers over DPDK's inline and macro API; see include/CDPDK.h.
#define _GNU_SOURCE
#include "CDPDK.h"

#include <errno.h>
#include <string.h>

#include <dirent.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <sys/socket.h>

int mtcp_dpdk_packet_sockets(int ifindex, int *fds, int capacity) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) return -errno;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != 0 || fd == dirfd(dir)) continue;
        struct sockaddr_ll address;
        socklen_t length = sizeof(address);
        memset(&address, 0, sizeof(address));
        if (getsockname((int)fd, (struct sockaddr *)&address, &length) != 0) continue;
        if (address.sll_family != AF_PACKET || address.sll_ifindex != ifindex) continue;
        if (count < capacity) {
            // Kept in ascending order.
            int at = count;
            while (at > 0 && fds[at - 1] > (int)fd) {
                fds[at] = fds[at - 1];
                at--;
            }
            fds[at] = (int)fd;
        }
        count++;
    }
    closedir(dir);
    return count;
}

#if __has_include(<rte_ethdev.h>)

#include <rte_config.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_tcp.h>
#include <rte_udp.h>

_Static_assert(
    MTCP_DPDK_RSS_IPV4_TYPES ==
        (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP),
    "RSS type bits");

int mtcp_dpdk_available(void) { return 1; }

int mtcp_dpdk_eal_init(int argc, char **argv) {
    cpu_set_t saved;
    int have_saved = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
    int result = rte_eal_init(argc, argv);
    if (have_saved) pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
    if (result < 0) return rte_errno > 0 ? -rte_errno : -EINVAL;
    return 0;
}

int mtcp_dpdk_eal_cleanup(void) { return rte_eal_cleanup(); }

const char *mtcp_dpdk_strerror(int code) { return rte_strerror(code < 0 ? -code : code); }

uint16_t mtcp_dpdk_port_count(void) { return rte_eth_dev_count_avail(); }

int mtcp_dpdk_port_by_name(const char *name, uint16_t *port) {
    int result = rte_eth_dev_get_port_by_name(name, port);
    return result < 0 ? result : 0;
}

int mtcp_dpdk_port_name(uint16_t port, char *name, uint32_t size) {
    char full[RTE_ETH_NAME_MAX_LEN];
    int result = rte_eth_dev_get_name_by_port(port, full);
    if (result != 0) return result;
    snprintf(name, size, "%s", full);
    return 0;
}

// Whether the mapping holding `address` is private, from /proc/self/maps ("rw-p" or "rw-s").
static int mapping_is_private(uintptr_t address) {
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) return 0;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof(line), maps)) {
        unsigned long start, end;
        char permissions[8];
        if (sscanf(line, "%lx-%lx %7s", &start, &end, permissions) != 3) continue;
        if (address >= start && address < end) {
            found = permissions[3] == 'p';
            break;
        }
    }
    fclose(maps);
    return found;
}

static int check_list_private(const struct rte_memseg_list *msl, void *arg) {
    if (msl->external || msl->base_va == NULL || msl->len == 0) return 0;
    if (!mapping_is_private((uintptr_t)msl->base_va)) {
        *(int *)arg = 0;
        return 1;
    }
    return 0;
}

int mtcp_dpdk_memory_is_private(void) {
    // Hugepages are always shared mappings; plain pages may be a shared memory file.
    if (rte_eal_has_hugepages()) return 0;
    int is_private = 1;
    rte_memseg_list_walk(check_list_private, &is_private);
    return is_private;
}

int mtcp_dpdk_vdev_create(const char *name, const char *args) {
    int result = rte_vdev_init(name, args);
    // A positive result means no driver's name is a prefix of `name`.
    return result > 0 ? -ENODEV : result;
}

int mtcp_dpdk_port_info(uint16_t port, struct mtcp_dpdk_port_info *info) {
    struct rte_eth_dev_info dev;
    memset(info, 0, sizeof(*info));
    int result = rte_eth_dev_info_get(port, &dev);
    if (result != 0) return result;
    struct rte_ether_addr mac;
    result = rte_eth_macaddr_get(port, &mac);
    if (result != 0) return result;
    memcpy(info->mac, mac.addr_bytes, 6);
    uint16_t mtu = RTE_ETHER_MTU;
    if (rte_eth_dev_get_mtu(port, &mtu) != 0) mtu = RTE_ETHER_MTU;
    info->mtu = mtu;
    info->max_rx_queues = dev.max_rx_queues;
    info->max_tx_queues = dev.max_tx_queues;
    info->reta_size = dev.reta_size;
    info->hash_key_size = dev.hash_key_size;
    info->rss_types = dev.flow_type_rss_offloads;
    uint64_t tx = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    info->tx_checksum = (dev.tx_offload_capa & tx) == tx;
    uint64_t rx = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
    info->rx_checksum = (dev.rx_offload_capa & rx) == rx;
    info->socket = rte_eth_dev_socket_id(port);
    snprintf(info->driver, sizeof(info->driver), "%s", dev.driver_name ? dev.driver_name : "?");
    return 0;
}

static void free_pools(struct mtcp_dpdk_port_state *state, uint16_t queues) {
    for (uint16_t q = 0; q < queues && q < 64; q++) {
        if (state->pools[q]) rte_mempool_free(state->pools[q]);
        state->pools[q] = NULL;
    }
}

// Spreads the redirection table over the queues round robin (what most drivers do by default;
// done explicitly so the table matches the queue count whatever the driver's default).
static int spread_reta(uint16_t port, uint16_t reta_size, uint16_t queues) {
    if (reta_size == 0) return -ENOTSUP;
    struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
    if (reta_size > RTE_ETH_RSS_RETA_SIZE_512) return -EINVAL;
    memset(reta, 0, sizeof(reta));
    for (uint16_t i = 0; i < reta_size; i++) {
        struct rte_eth_rss_reta_entry64 *group = &reta[i / RTE_ETH_RETA_GROUP_SIZE];
        group->mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
        group->reta[i % RTE_ETH_RETA_GROUP_SIZE] = i % queues;
    }
    return rte_eth_dev_rss_reta_update(port, reta, reta_size);
}

int mtcp_dpdk_port_start(
    uint16_t port, const char *name, const struct mtcp_dpdk_port_config *config,
    struct mtcp_dpdk_port_state *state, const char **failed_step) {
    memset(state, 0, sizeof(*state));
    if (config->queues == 0 || config->queues > 64) {
        *failed_step = "queue count (1-64)";
        return -EINVAL;
    }
    struct rte_eth_dev_info dev;
    int result = rte_eth_dev_info_get(port, &dev);
    if (result != 0) {
        *failed_step = "rte_eth_dev_info_get";
        return result;
    }
    int socket = rte_eth_dev_socket_id(port);
    if (socket < 0) socket = (int)SOCKET_ID_ANY;

    struct rte_eth_conf conf;
    memset(&conf, 0, sizeof(conf));
    uint64_t rss_types = config->rss_types & dev.flow_type_rss_offloads;
    if (config->queues > 1 && config->rss_key && rss_types != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)config->rss_key;
        conf.rx_adv_conf.rss_conf.rss_key_len = config->rss_key_length;
        conf.rx_adv_conf.rss_conf.rss_hf = rss_types;
        state->rss = 1;
        state->rss_types = rss_types;
    }
    uint64_t tx_checksum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    if (config->tx_checksum && (dev.tx_offload_capa & tx_checksum) == tx_checksum) {
        conf.txmode.offloads |= tx_checksum;
        if (dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
        state->tx_checksum = 1;
    }
    result = rte_eth_dev_configure(port, config->queues, config->queues, &conf);
    if (result != 0) {
        *failed_step = "rte_eth_dev_configure";
        return result;
    }
    uint16_t rx_descriptors = config->rx_descriptors;
    uint16_t tx_descriptors = config->tx_descriptors;
    result = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_descriptors, &tx_descriptors);
    if (result != 0) {
        *failed_step = "rte_eth_dev_adjust_nb_rx_tx_desc";
        goto fail;
    }
    for (uint16_t q = 0; q < config->queues; q++) {
        char pool_name[RTE_MEMPOOL_NAMESIZE];
        snprintf(pool_name, sizeof(pool_name), "mtcp_p%u_q%u", port, q);
        // Our threads are not EAL lcores, so a per-lcore cache would go unused: size 0.
        struct rte_mempool *pool = rte_pktmbuf_pool_create(
            pool_name, config->mbufs_per_queue, 0, 0, (uint16_t)(config->frame_size + RTE_PKTMBUF_HEADROOM), socket);
        if (!pool) {
            *failed_step = "rte_pktmbuf_pool_create";
            result = -rte_errno;
            goto fail;
        }
        state->pools[q] = pool;
        result = rte_eth_rx_queue_setup(port, q, rx_descriptors, (unsigned)socket, NULL, pool);
        if (result != 0) {
            *failed_step = "rte_eth_rx_queue_setup";
            goto fail;
        }
        struct rte_eth_txconf txconf = dev.default_txconf;
        txconf.offloads = conf.txmode.offloads;
        result = rte_eth_tx_queue_setup(port, q, tx_descriptors, (unsigned)socket, &txconf);
        if (result != 0) {
            *failed_step = "rte_eth_tx_queue_setup";
            goto fail;
        }
    }
    result = rte_eth_dev_start(port);
    if (result != 0) {
        *failed_step = "rte_eth_dev_start";
        goto fail;
    }
    // The stack filters frames by MAC itself, so promiscuous mode is left as the port has it;
    // multicast is taken whole (IPv6 neighbour solicitations go to solicited-node groups, and
    // the stack sends no listener reports). A port that cannot is no error: IPv4 needs no
    // multicast, and IPv6 peers that know the stack's MAC reach it by unicast.
    (void)rte_eth_allmulticast_enable(port);
    if (state->rss) state->reta_result = spread_reta(port, dev.reta_size, config->queues);
    (void)name;
    return 0;
fail:
    rte_eth_dev_close(port);
    free_pools(state, config->queues);
    return result < 0 ? result : -result;
}

void mtcp_dpdk_port_close(uint16_t port, struct mtcp_dpdk_port_state *state, uint16_t queues) {
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
    free_pools(state, queues);
}

uint16_t mtcp_dpdk_rx_burst(
    uint16_t port, uint16_t queue, void **mbufs, const void **data, uint16_t *lengths, uint16_t count,
    uint64_t *dropped) {
    struct rte_mbuf **received = (struct rte_mbuf **)mbufs;
    uint16_t n = rte_eth_rx_burst(port, queue, received, count);
    uint16_t kept = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = received[i];
        if (m->nb_segs != 1) {
            rte_pktmbuf_free(m);
            *dropped += 1;
            continue;
        }
        received[kept] = m;
        data[kept] = rte_pktmbuf_mtod(m, const void *);
        lengths[kept] = m->data_len;
        kept++;
    }
    return kept;
}

void mtcp_dpdk_free_bulk(void **mbufs, uint32_t count) {
    rte_pktmbuf_free_bulk((struct rte_mbuf **)mbufs, count);
}

int mtcp_dpdk_alloc_bulk(void *pool, void **mbufs, uint32_t count) {
    return rte_pktmbuf_alloc_bulk((struct rte_mempool *)pool, (struct rte_mbuf **)mbufs, count) == 0 ? 0 : -ENOBUFS;
}

void *mtcp_dpdk_mbuf_data(void *mbuf, uint32_t *room) {
    struct rte_mbuf *m = mbuf;
    *room = rte_pktmbuf_tailroom(m) + m->data_len;
    return rte_pktmbuf_mtod(m, void *);
}

int mtcp_dpdk_tx_prepare(void *mbuf, uint16_t length, int tx_checksum) {
    struct rte_mbuf *m = mbuf;
    m->data_len = length;
    m->pkt_len = length;
    m->ol_flags = 0;
    if (!tx_checksum || length < sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr)) return 0;
    struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
    if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) return 0;
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    uint16_t ip_length = rte_ipv4_hdr_len(ip);
    if ((ip->version_ihl >> 4) != 4 || ip_length < sizeof(*ip)) return 0;
    // Fragments carry no complete L4 header to offload.
    if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK | RTE_IPV4_HDR_MF_FLAG)) return 0;
    uint32_t l4 = sizeof(*eth) + ip_length;
    uint64_t flags = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    if (ip->next_proto_id == IPPROTO_TCP && length >= l4 + sizeof(struct rte_tcp_hdr)) {
        flags |= RTE_MBUF_F_TX_TCP_CKSUM;
        struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)((char *)eth + l4);
        tcp->cksum = rte_ipv4_phdr_cksum(ip, flags);
    } else {
        // IP header checksum only; the stack's L4 checksum (if any) stays.
    }
    ip->hdr_checksum = 0;
    m->l2_len = sizeof(*eth);
    m->l3_len = ip_length;
    m->ol_flags = flags;
    return 1;
}

uint16_t mtcp_dpdk_tx_burst(uint16_t port, uint16_t queue, void **mbufs, uint16_t count) {
    return rte_eth_tx_burst(port, queue, (struct rte_mbuf **)mbufs, count);
}

int mtcp_dpdk_port_drops(uint16_t port, uint64_t *receive, uint64_t *transmit) {
    struct rte_eth_stats stats;
    int result = rte_eth_stats_get(port, &stats);
    if (result != 0) return result;
    *receive = stats.imissed + stats.ierrors + stats.rx_nombuf;
    *transmit = stats.oerrors;
    return 0;
}

#else  // Built without libdpdk-dev: every call fails, nothing links against DPDK.

int mtcp_dpdk_available(void) { return 0; }
int mtcp_dpdk_eal_init(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return -ENOTSUP;
}
int mtcp_dpdk_eal_cleanup(void) { return -ENOTSUP; }
const char *mtcp_dpdk_strerror(int code) { return strerror(code < 0 ? -code : code); }
uint16_t mtcp_dpdk_port_count(void) { return 0; }
int mtcp_dpdk_port_by_name(const char *name, uint16_t *port) {
    (void)name;
    (void)port;
    return -ENOTSUP;
}
int mtcp_dpdk_port_name(uint16_t port, char *name, uint32_t size) {
    (void)port;
    if (size > 0) name[0] = 0;
    return -ENOTSUP;
}
int mtcp_dpdk_memory_is_private(void) { return 0; }
int mtcp_dpdk_vdev_create(const char *name, const char *args) {
    (void)name;
    (void)args;
    return -ENOTSUP;
}
int mtcp_dpdk_port_info(uint16_t port, struct mtcp_dpdk_port_info *info) {
    (void)port;
    memset(info, 0, sizeof(*info));
    return -ENOTSUP;
}
int mtcp_dpdk_port_start(
    uint16_t port, const char *name, const struct mtcp_dpdk_port_config *config,
    struct mtcp_dpdk_port_state *state, const char **failed_step) {
    (void)port;
    (void)name;
    (void)config;
    memset(state, 0, sizeof(*state));
    *failed_step = "DPDK (built without libdpdk-dev)";
    return -ENOTSUP;
}
void mtcp_dpdk_port_close(uint16_t port, struct mtcp_dpdk_port_state *state, uint16_t queues) {
    (void)port;
    (void)state;
    (void)queues;
}
uint16_t mtcp_dpdk_rx_burst(
    uint16_t port, uint16_t queue, void **mbufs, const void **data, uint16_t *lengths, uint16_t count,
    uint64_t *dropped) {
    (void)port, (void)queue, (void)mbufs, (void)data, (void)lengths, (void)count, (void)dropped;
    return 0;
}
void mtcp_dpdk_free_bulk(void **mbufs, uint32_t count) { (void)mbufs, (void)count; }
int mtcp_dpdk_alloc_bulk(void *pool, void **mbufs, uint32_t count) {
    (void)pool, (void)mbufs, (void)count;
    return -ENOBUFS;
}
void *mtcp_dpdk_mbuf_data(void *mbuf, uint32_t *room) {
    (void)mbuf;
    *room = 0;
    return 0;
}
int mtcp_dpdk_tx_prepare(void *mbuf, uint16_t length, int tx_checksum) {
    (void)mbuf, (void)length, (void)tx_checksum;
    return 0;
}
uint16_t mtcp_dpdk_tx_burst(uint16_t port, uint16_t queue, void **mbufs, uint16_t count) {
    (void)port, (void)queue, (void)mbufs, (void)count;
    return 0;
}
int mtcp_dpdk_port_drops(uint16_t port, uint64_t *receive, uint64_t *transmit) {
    (void)port;
    *receive = 0;
    *transmit = 0;
    return -ENOTSUP;
}

#endif
