// tc eBPF impairment (egress, or ingress): drops, duplicates and corrupts IPv4 packets of one IP protocol
// (TCP unless told otherwise) with per-mille probabilities read from a map.
//
// This kernel has no netem, so this program stands in for it on a veth's egress:
//   tc qdisc add dev X clsact
//   tc filter add dev X egress bpf da obj impair.o sec tc
// Rates are set at run time in the `impair_cfg` array map (bpftool map update), or compiled in
// with -DIMPAIR_LOSS=... etc. for hosts without bpftool (used until the map's key 4 is set).
// What it did is counted in the `impair_stats` array map. Delay and reordering are not done
// here: they need a queue, which a tc program has not got.
//
// Non-IPv4 frames (ARP above all) always pass, so neighbours resolve.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef IMPAIR_LOSS
#define IMPAIR_LOSS 0
#endif
#ifndef IMPAIR_DUP
#define IMPAIR_DUP 0
#endif
#ifndef IMPAIR_CORRUPT
#define IMPAIR_CORRUPT 0
#endif
#ifndef IMPAIR_PROTO
#define IMPAIR_PROTO 0
#endif
#ifndef IMPAIR_INGRESS
#define IMPAIR_INGRESS 0
#endif

// Keys of impair_cfg (u32 values).
enum {
    CFG_LOSS = 0,     // per mille of matching packets dropped
    CFG_DUP = 1,      // per mille of matching packets sent twice
    CFG_CORRUPT = 2,  // per mille of matching packets with one byte flipped
    CFG_PROTO = 3,    // IP protocol impaired: 0 = TCP, 255 = every IPv4 packet, else that number
    CFG_SET = 4,      // nonzero once user space has written the map; until then the -D values
    CFG_INGRESS = 5,  // nonzero when attached on ingress: duplicates go to ingress too
    CFG_COUNT = 6,
};

// Keys of impair_stats (u64 values).
enum {
    ST_SEEN = 0,       // matching packets looked at (clones excluded)
    ST_DROPPED = 1,
    ST_DUPLICATED = 2,
    ST_CORRUPTED = 3,
    ST_PASSED = 4,     // every frame let through (maybe changed), matching or not, clones excluded
    ST_COUNT = 5,
};

// Marks our own duplicate so that, when bpf_clone_redirect sends it through this same egress
// hook again, it is let through instead of being impaired (and perhaps cloned) once more.
#define CLONE_MARK 0x1a7e5eedu

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, CFG_COUNT);
    __type(key, __u32);
    __type(value, __u32);
} impair_cfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ST_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} impair_stats SEC(".maps");

static __always_inline __u32 cfg_get(__u32 key, __u32 fallback, int use_map) {
    if (!use_map)
        return fallback;
    __u32 *value = bpf_map_lookup_elem(&impair_cfg, &key);
    return value ? *value : 0;
}

static __always_inline void count(__u32 key) {
    __u64 *value = bpf_map_lookup_elem(&impair_stats, &key);
    if (value)
        __sync_fetch_and_add(value, 1);
}

// True with probability permille/1000.
static __always_inline int chance(__u32 permille) {
    return permille && (bpf_get_prandom_u32() % 1000) < permille;
}

// Offset of the checksum field within a transport header, or -1 if none is known.
static __always_inline int checksum_offset(__u8 protocol) {
    switch (protocol) {
    case IPPROTO_TCP: return 16;
    case IPPROTO_UDP: return 6;
    case IPPROTO_ICMP: return 2;
    default: return -1;
    }
}

// Flips one byte after the IP header (transport header or payload) so that the transport
// checksum no longer matches, whatever state the checksum is in:
// - finished (frames from a packet socket, ICMP, forwarded packets): changing the data is
//   enough;
// - CHECKSUM_PARTIAL (the local kernel's TCP/UDP: tc egress runs before the software checksum
//   when offloads are off): the field holds only the pseudo-header seed, and the checksum
//   computed later would cover the flipped byte and come out right. So the seed is moved by
//   the opposite of the change, and the finished checksum is the one of the original data.
// Two bpf_l4_csum_replace calls do this without knowing the state: the first (no pseudo-header
// flag) adjusts only a finished checksum, by +d; the second (pseudo-header flag) adjusts
// either, by -d. Net: finished checksums unchanged, partial seeds moved by -d.
// Returns 0 when a byte was flipped.
static __always_inline int corrupt(struct __sk_buff *skb, __u32 l4_offset, __u32 ip_len,
                                   __u32 ip_header_len, __u8 protocol) {
    if (ip_len < ip_header_len + 2 || ip_len > 0xffff)
        return -1;
    __u32 words = (ip_len - ip_header_len) / 2;
    __u32 word = bpf_get_prandom_u32() % words;
    int check = checksum_offset(protocol);
    // The byte must not be in the checksum field itself, or the second adjustment would undo
    // the change of a partial seed.
    if (check >= 0 && word == (__u32)check / 2)
        word = word ? word - 1 : word + 1;
    if (word >= words)
        return -1;
    __u32 offset = l4_offset + word * 2;
    __u16 before, after;
    if (bpf_skb_load_bytes(skb, offset, &before, 2) < 0)
        return -1;
    after = before ^ ((bpf_get_prandom_u32() & 1) ? 0x00ff : 0xff00);
    if (bpf_skb_store_bytes(skb, offset, &after, 2, 0) < 0)
        return -1;
    if (check >= 0) {
        __u32 field = l4_offset + (__u32)check;
        if (bpf_l4_csum_replace(skb, field, before, after, 2) < 0 ||
            bpf_l4_csum_replace(skb, field, after, before, BPF_F_PSEUDO_HDR | 2) < 0)
            return -1;
    }
    return 0;
}

SEC("tc")
int impair(struct __sk_buff *skb) {
    if (skb->mark == CLONE_MARK) {
        skb->mark = 0;
        return TC_ACT_OK;
    }
    if (skb->protocol != bpf_htons(ETH_P_IP)) {
        count(ST_PASSED);
        return TC_ACT_OK;
    }

    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl < 5) {
        count(ST_PASSED);
        return TC_ACT_OK;
    }

    __u32 set_key = CFG_SET;
    __u32 *set = bpf_map_lookup_elem(&impair_cfg, &set_key);
    int use_map = set && *set;
    __u32 proto = cfg_get(CFG_PROTO, IMPAIR_PROTO, use_map);
    if (proto == 0)
        proto = IPPROTO_TCP;
    if (proto != 255 && ip.protocol != proto) {
        count(ST_PASSED);
        return TC_ACT_OK;
    }
    count(ST_SEEN);

    if (chance(cfg_get(CFG_LOSS, IMPAIR_LOSS, use_map))) {
        count(ST_DROPPED);
        // STOLEN, not SHOT: SHOT makes the local sender see ENOBUFS, and ping and the
        // kernel's TCP then send the packet again at once instead of losing it.
        return TC_ACT_STOLEN;
    }

    if (chance(cfg_get(CFG_CORRUPT, IMPAIR_CORRUPT, use_map)) &&
        corrupt(skb, ETH_HLEN + ip.ihl * 4u, bpf_ntohs(ip.tot_len), ip.ihl * 4u, ip.protocol) == 0)
        count(ST_CORRUPTED);

    if (chance(cfg_get(CFG_DUP, IMPAIR_DUP, use_map))) {
        __u32 mark = skb->mark;
        skb->mark = CLONE_MARK;
        __u64 flags = cfg_get(CFG_INGRESS, IMPAIR_INGRESS, use_map) ? BPF_F_INGRESS : 0;
        if (bpf_clone_redirect(skb, skb->ifindex, flags) == 0)
            count(ST_DUPLICATED);
        skb->mark = mark;
    }

    count(ST_PASSED);
    return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
