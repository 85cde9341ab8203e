#!/usr/bin/env bash
# The stack against real Linux peers over a veth (issue 3's acceptance tests):
#   ping        the kernel pings the stack's address
#   bulk        64 MiB each way to our echo server, byte-exact
#   impaired    64 MiB each way with 2% loss, 5% reordering, 1% duplication both ways (tc eBPF on
#               the kernel's egress + the stack's seeded impairment layer), and again with the
#               kernel's SACK, timestamps and window scaling each switched off
#   concurrent  2,000 connections at once from the kernel to our echo server
#   sequential  20,000 short connections in a row, none lost
#   httpd       kernel curl fetches small and 10 MiB files from mtcp-httpd, byte-exact; mtcp-stat
#               sees it, and its capture (--pcap) reads in tshark
#   load        our load generator fetches from a kernel nginx
#   cores       two per-core instances on one interface share the connections
#   garbage     malformed frames at the stack are counted and dropped during a transfer
#   allocations the packet path allocates nothing: malloc calls do not grow with the traffic
# Usage: bash tests/interop/test-stack-interop.sh [TEST...]   (MTCP_INTEROP_QUICK=1: smaller sizes)
# MTCP_INTEROP_BACKEND=dpdk (or MTCP_BACKEND=dpdk) runs every test on the dpdk backend: the EAL
# with --no-huge --no-pci and a net_af_packet port on the stack's veth end (qpairs=N for N cores).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/interop/lib/netns.sh
source "$HERE/lib/netns.sh"
# shellcheck source=tests/interop/lib/run-isolated.sh
source "$HERE/lib/run-isolated.sh"
# shellcheck source=tests/interop/lib/peer-nginx.sh
source "$HERE/lib/peer-nginx.sh"
# shellcheck source=tests/interop/lib/stack-program.sh
source "$HERE/lib/stack-program.sh"
BIN="${MTCP_BIN:-$ROOT/.build/release}"
CHECK="$HERE/tools/tcpcheck.py"
QUICK="${MTCP_INTEROP_QUICK:-0}"
BACKEND="${MTCP_INTEROP_BACKEND:-${MTCP_BACKEND:-afpacket}}"
case "$BACKEND" in
    afpacket | dpdk) ;;
    *) echo "interop: MTCP_INTEROP_BACKEND must be afpacket or dpdk, not '$BACKEND'" >&2; exit 2 ;;
esac
BULK=$((64 << 20))
CONCURRENT=2000
SEQUENTIAL=20000
if [[ "$QUICK" == 1 ]]; then BULK=$((4 << 20)); CONCURRENT=200; SEQUENTIAL=500; fi
WORK="$(mktemp -d /tmp/mtcp-interop.XXXXXX)"
NETNS_CLEANUP_HOOKS+=("rm -rf '$WORK'")
PASSED=0
FAILED=0
FAILURES=()

for tool in "$BIN/mtcp-echo" "$BIN/mtcp-httpd" "$BIN/mtcp-load"; do
    [[ -x "$tool" ]] || { echo "interop: $tool is missing; build with: swift build -c release" >&2; exit 2; }
done

log() { printf '%s\n' "interop: $*"; }

STACK_START_TENTHS=150

# link_args QUEUES: sets LINK to the flags that put one of our programs on the stack's end of
# the veth with QUEUES queues (AF_PACKET fanout members, or net_af_packet queue pairs).
LINK=()
link_args() {
    local queues="${1:-1}"
    if [[ "$BACKEND" == afpacket ]]; then
        LINK=(--iface "$STACK_IF")
        return
    fi
    local vdev="net_af_packet0,iface=$STACK_IF"
    if ((queues > 1)); then vdev+=",qpairs=$queues"; fi
    LINK=(--backend dpdk --iface net_af_packet0 --dpdk-args "--no-huge --no-pci -m 256 --vdev=$vdev")
}

run_test() {
    local name="$1"
    log "=== $name"
    local start=$SECONDS
    run_isolated "test_$name"
    if ((ISOLATED_STATUS == 0)); then
        PASSED=$((PASSED + 1))
        log "--- $name passed ($((SECONDS - start)) s)"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$name")
        log "--- $name FAILED ($((SECONDS - start)) s)"
    fi
    if [[ -n "$SERVER_PID" ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; fi
}

echo_server() {
    local queues=1 previous="" arg
    for arg in "$@"; do
        if [[ "$previous" == --cores ]]; then queues="$arg"; fi
        previous="$arg"
    done
    link_args "$queues"
    start_stack echo "$BIN/mtcp-echo" "${LINK[@]}" --addr "$STACK_ADDR/24" --duration 900 "$@"
}

test_ping() {
    echo_server
    peer ping -c 5 -i 0.2 -W 2 "$STACK_ADDR" | tee "$WORK/ping.txt"
    grep -q " 5 received" "$WORK/ping.txt"
    stop_stack echo
    grep -q "icmp_echo_replies=5" "$WORK/echo.log"
}

test_bulk() {
    echo_server
    peer python3 "$CHECK" bulk --host "$STACK_ADDR" --bytes "$BULK"
    stop_stack echo
}

test_impaired() {
    # Kernel -> stack: loss and duplication on the kernel's egress (tc eBPF), reordering in the
    # stack's receive path. Stack -> kernel: all three in the stack's transmit path.
    impair_attach "$PEER_IF" 20 10 0
    echo_server --impair-tx loss=0.02,dup=0.01,reorder=0.05,seed=3 --impair-rx reorder=0.05,seed=4
    local variant
    for variant in "all on" net.ipv4.tcp_sack net.ipv4.tcp_timestamps net.ipv4.tcp_window_scaling; do
        if [[ "$variant" != "all on" ]]; then netns_set_sysctl "$variant" 0; fi
        if [[ "$variant" == "all on" ]]; then log "impaired bulk transfer, kernel peer with SACK, timestamps, window scaling on"; else log "impaired bulk transfer, kernel peer with ${variant#net.ipv4.} off"; fi
        peer python3 "$CHECK" bulk --host "$STACK_ADDR" --bytes "$BULK" --timeout 60 --deadline 400
        if [[ "$variant" != "all on" ]]; then netns_set_sysctl "$variant" 1; fi
    done
    impair_counters "$PEER_IF"
    [[ "$(impair_counter "$PEER_IF" dropped)" -gt 0 ]]
    [[ "$(impair_counter "$PEER_IF" duplicated)" -gt 0 ]]
    impair_detach "$PEER_IF"
    stop_stack echo
}

test_concurrent() {
    echo_server
    peer python3 "$CHECK" concurrent --host "$STACK_ADDR" --connections "$CONCURRENT" --deadline 120
    stop_stack echo
}

test_sequential() {
    echo_server
    peer python3 "$CHECK" sequential --host "$STACK_ADDR" --count "$SEQUENTIAL" --deadline 600
    stop_stack echo
    grep -q "accepted=$SEQUENTIAL " "$WORK/echo.log"
}

test_httpd() {
    mkdir -p "$WORK/www"
    echo "hello from the user-level stack" >"$WORK/www/index.html"
    head -c 1024 /dev/urandom >"$WORK/www/small.bin"
    head -c $((10 << 20)) /dev/urandom >"$WORK/www/big.bin"
    link_args 1
    start_stack httpd "$BIN/mtcp-httpd" "${LINK[@]}" --addr "$STACK_ADDR/24" --root "$WORK/www" \
        --port 80 --duration 600 --pcap "$WORK/httpd.pcapng" --stats-dir "$WORK"
    local file
    for file in index.html small.bin big.bin; do
        peer curl -sS --fail --max-time 60 -o "$WORK/got-$file" "http://$STACK_ADDR/$file"
        cmp "$WORK/www/$file" "$WORK/got-$file"
        log "curl fetched $file ($(stat -c %s "$WORK/got-$file") bytes), byte-exact"
    done
    # Keep-alive: several requests on one connection.
    peer curl -sS --fail --max-time 60 -o /dev/null -o /dev/null -o /dev/null \
        "http://$STACK_ADDR/small.bin" "http://$STACK_ADDR/index.html" "http://$STACK_ADDR/big.bin"
    if peer curl -sS --fail --max-time 10 -o /dev/null "http://$STACK_ADDR/missing"; then return 1; fi
    # mtcp-stat sees the example program (its statistics region), and its capture reads.
    if [[ -x "$BIN/mtcp-stat" ]]; then
        # The region is written at most 200 ms after the last change.
        local tries
        for ((tries = 0; tries < 20; tries++)); do
            "$BIN/mtcp-stat" --dir "$WORK" -p "$SERVER_PID" >"$WORK/httpd-stat.txt"
            grep -q " passive_opens=5 " "$WORK/httpd-stat.txt" && break
            sleep 0.1
        done
        cat "$WORK/httpd-stat.txt"
        grep -q "^pid $SERVER_PID mtcp-httpd (running) example" "$WORK/httpd-stat.txt"
        grep -q " passive_opens=5 " "$WORK/httpd-stat.txt"
    fi
    stop_stack httpd
    [[ ! -e "$WORK/mtcp-stats.$SERVER_PID" ]]
    if command -v tshark >/dev/null; then
        local frames
        frames="$(tshark -r "$WORK/httpd.pcapng" -Y 'tcp.port == 80' 2>/dev/null | wc -l)"
        log "the capture holds $frames frames of port 80"
        ((frames > 7000))
    fi
}

test_load() {
    command -v nginx >/dev/null || { log "nginx is not installed"; return 1; }
    mkdir -p "$WORK/nginx/www"
    head -c 64 /dev/urandom >"$WORK/nginx/www/64.bin"
    peer_nginx_start "$WORK/nginx" 8080
    local count=$((CONCURRENT * 2))
    link_args 1
    "$BIN/mtcp-load" "${LINK[@]}" --addr "$STACK_ADDR/24" --server "$PEER_ADDR" --port 8080 \
        --path /64.bin --connections "$count" --concurrency 50 --duration 120 | tee "$WORK/load.txt"
    grep -q "mtcp-load: completed=$count non2xx=0 errors=0" "$WORK/load.txt"
    "$BIN/mtcp-load" "${LINK[@]}" --addr "$STACK_ADDR/24" --server "$PEER_ADDR" --port 8080 \
        --path /64.bin --connections 20 --concurrency 20 --requests-per-connection 200 --duration 120 \
        | tee "$WORK/load-keepalive.txt"
    grep -q "mtcp-load: completed=4000 non2xx=0 errors=0" "$WORK/load-keepalive.txt"
}

test_cores() {
    echo_server --cores 2
    peer python3 "$CHECK" concurrent --host "$STACK_ADDR" --connections 400 --deadline 60
    stop_stack echo
    local a b
    a="$(sed -n 's/^mtcp-echo\[0\]: accepted=\([0-9]*\) .*/\1/p' "$WORK/echo.log")"
    b="$(sed -n 's/^mtcp-echo\[1\]: accepted=\([0-9]*\) .*/\1/p' "$WORK/echo.log")"
    log "instance 0 accepted $a connections, instance 1 accepted $b"
    [[ -n "$a" && -n "$b" && "$a" -gt 0 && "$b" -gt 0 && $((a + b)) -eq 400 ]]
}

test_garbage() {
    echo_server
    peer python3 "$CHECK" bulk --host "$STACK_ADDR" --bytes "$BULK" --deadline 200 &
    local transfer=$!
    peer python3 "$CHECK" garbage --iface "$PEER_IF" --dst-mac "$STACK_MAC" --src-ip "$PEER_ADDR" \
        --dst-ip "$STACK_ADDR" --count 1400 --interval 0.0005
    wait "$transfer"
    stop_stack echo
    local malformed
    malformed="$(sed -n 's/.* malformed=\([0-9]*\) .*/\1/p' "$WORK/echo.log" | head -n 1)"
    log "the stack counted $malformed malformed frames"
    [[ "$malformed" -ge 1000 ]]
    grep -q "tcp_bad_checksum=[1-9]" "$WORK/echo.log"
    grep -q "ipv4_bad_checksum=[1-9]" "$WORK/echo.log"
    if [[ "$BACKEND" == dpdk ]]; then
        # net_af_packet joins its sockets in a PACKET_FANOUT group with FLAG_DEFRAG: the kernel
        # reassembles (or holds until they expire) IPv4 fragments before the port sees them.
        log "fragments not checked on dpdk: net_af_packet's fanout defragments before the stack"
    else
        grep -q "ipv4_fragments=[1-9]" "$WORK/echo.log"
    fi
    grep -q "tcp_bad_option=[1-9]" "$WORK/echo.log"
}

test_allocations() {
    # The packet path must not allocate: run the echo server under a malloc counter for a small
    # and an eight times larger transfer; the count may not grow with the packets.
    gcc -shared -fPIC -O2 -o "$WORK/malloc-count.so" "$HERE/tools/malloc-count.c" -ldl
    local size count frames
    local -a counts=() frame_counts=()
    for size in $((4 << 20)) $((32 << 20)); do
        LD_PRELOAD="$WORK/malloc-count.so" echo_server
        peer python3 "$CHECK" bulk --host "$STACK_ADDR" --bytes "$size"
        stop_stack echo
        count="$(sed -n 's/^malloc-count: \([0-9]*\)$/\1/p' "$WORK/echo.log")"
        frames="$(sed -n 's/.* frames_in=\([0-9]*\) .*/\1/p' "$WORK/echo.log" | head -n 1)"
        counts+=("$count")
        frame_counts+=("$frames")
    done
    log "mallocs: ${counts[0]} for ${frame_counts[0]} frames received, ${counts[1]} for ${frame_counts[1]}"
    [[ -n "${counts[0]}" && -n "${counts[1]}" ]]
    # Eight times the traffic (tens of thousands more frames) may cost a few bookkeeping
    # allocations (hash tables growing), not one per packet.
    ((counts[1] - counts[0] < 200))
    ((frame_counts[1] - frame_counts[0] > 20000))
}

ALL=(ping bulk impaired concurrent sequential httpd load cores garbage allocations)
TESTS=("$@")
((${#TESTS[@]} > 0)) || TESTS=("${ALL[@]}")
ulimit -n 65536 2>/dev/null || true
netns_setup interop
log "stack $STACK_IF ($STACK_ADDR, $STACK_MAC, backend $BACKEND) <-> kernel $PEER_IF in $PEER_NS ($PEER_ADDR)"
for t in "${TESTS[@]}"; do run_test "$t"; done
echo
if ((FAILED > 0)); then log "failed: ${FAILURES[*]}"; fi
echo "interop: $PASSED passed, $FAILED failed"
((FAILED == 0))
