#!/usr/bin/env bash
# The dpdk backend (issue 5) against the Linux kernel over a veth, with no NIC: the EAL runs
# with --no-huge --no-pci and the port is a virtual device on the stack's end of the veth.
#   ping       the kernel pings the stack (net_af_packet)
#   httpd      kernel curl fetches small and 10 MiB files from mtcp-httpd, byte-exact
#   load       mtcp-load against a kernel nginx: no errors, fresh and keep-alive connections
#   queues     two queue pairs (net_af_packet qpairs=2), one instance each: both serve
#              connections. net_af_packet has no RSS: its queues' sockets form a kernel
#              PACKET_FANOUT hash group, so this shows the per-queue path, not Toeplitz RSS
#   tap        mtcp-httpd on net_tap (a TAP device the kernel of the stack's namespace talks
#              to): curl byte-exact; net_tap offers checksum offloads, so they are used
# Prints PASS/FAIL lines and ends with "test-dpdk: N passed, M failed".
# Usage: bash tests/interop/test-dpdk.sh [TEST...]   (MTCP_BIN: where the programs are)
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
WORK="$(mktemp -d /tmp/mtcp-dpdk.XXXXXX)"
NETNS_CLEANUP_HOOKS+=("rm -rf '$WORK'")
PASSED=0
FAILED=0

for tool in "$BIN/mtcp-echo" "$BIN/mtcp-httpd" "$BIN/mtcp-load"; do
    [[ -x "$tool" ]] || { echo "test-dpdk: $tool is missing; build with: swift build -c release" >&2; exit 2; }
done

log() { printf '%s\n' "test-dpdk: $*"; }

# EAL arguments for a net_af_packet port on the stack's veth end; extra vdev options follow.
eal_af_packet() { printf '%s' "--no-huge --no-pci -m 256 --vdev=net_af_packet0,iface=$STACK_IF$1"; }

STACK_START_TENTHS=150

run_test() {
    local name="$1"
    log "=== $name"
    local start=$SECONDS
    run_isolated "test_$name"
    if ((ISOLATED_STATUS == 0)); then
        PASSED=$((PASSED + 1))
        echo "PASS: $name ($((SECONDS - start)) s)"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL: $name ($((SECONDS - start)) s)"
    fi
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

make_files() {
    mkdir -p "$WORK/www"
    echo "hello from the user-level stack on DPDK" >"$WORK/www/index.html"
    [[ -f "$WORK/www/big.bin" ]] || head -c $((10 << 20)) /dev/urandom >"$WORK/www/big.bin"
    [[ -f "$WORK/www/small.bin" ]] || head -c 1024 /dev/urandom >"$WORK/www/small.bin"
}

# fetch_all CURL-RUNNER ADDR: every file byte-exact, then a missing one refused.
fetch_all() {
    local runner="$1" address="$2" file
    for file in index.html small.bin big.bin; do
        "$runner" curl -sS --fail --max-time 60 -o "$WORK/got-$file" "http://$address/$file"
        cmp "$WORK/www/$file" "$WORK/got-$file"
        log "curl fetched $file ($(stat -c %s "$WORK/got-$file") bytes), byte-exact"
    done
    if "$runner" curl -sS --fail --max-time 10 -o /dev/null "http://$address/missing"; then return 1; fi
}

test_ping() {
    start_stack echo "$BIN/mtcp-echo" --backend dpdk --iface net_af_packet0 --addr "$STACK_ADDR/24" \
        --dpdk-args "$(eal_af_packet "")" --log info --duration 300
    peer ping -c 5 -i 0.2 -W 2 "$STACK_ADDR" | tee "$WORK/ping.txt"
    grep -q " 5 received" "$WORK/ping.txt"
    stop_stack echo
    grep -q "dpdk port .* net_af_packet" "$WORK/echo.log"
    grep -q "icmp_echo_replies=5" "$WORK/echo.log"
}

test_httpd() {
    make_files
    start_stack httpd "$BIN/mtcp-httpd" --backend dpdk --iface net_af_packet0 --addr "$STACK_ADDR/24" \
        --dpdk-args "$(eal_af_packet "")" --log info --root "$WORK/www" --port 80 --duration 300
    fetch_all peer "$STACK_ADDR"
    stop_stack httpd
    grep -q "checksums in software" "$WORK/httpd.log"
}

test_load() {
    command -v nginx >/dev/null || { log "nginx is not installed"; return 1; }
    mkdir -p "$WORK/nginx/www"
    head -c 64 /dev/urandom >"$WORK/nginx/www/64.bin"
    peer_nginx_start "$WORK/nginx" 8080
    local args
    args="$(eal_af_packet "")"
    timeout 200 ip netns exec "$STACK_NS" "$BIN/mtcp-load" --backend dpdk --iface net_af_packet0 \
        --addr "$STACK_ADDR/24" --dpdk-args "$args" --server "$PEER_ADDR" --port 8080 --path /64.bin \
        --connections 1000 --concurrency 50 --duration 120 | tee "$WORK/load.txt"
    grep -q "mtcp-load: completed=1000 non2xx=0 errors=0" "$WORK/load.txt"
    timeout 200 ip netns exec "$STACK_NS" "$BIN/mtcp-load" --backend dpdk --iface net_af_packet0 \
        --addr "$STACK_ADDR/24" --dpdk-args "$args" --server "$PEER_ADDR" --port 8080 --path /64.bin \
        --connections 10 --concurrency 10 --requests-per-connection 200 --duration 120 |
        tee "$WORK/load-keepalive.txt"
    grep -q "mtcp-load: completed=2000 non2xx=0 errors=0" "$WORK/load-keepalive.txt"
}

test_queues() {
    start_stack echo "$BIN/mtcp-echo" --backend dpdk --iface net_af_packet0 --addr "$STACK_ADDR/24" \
        --dpdk-args "$(eal_af_packet ",qpairs=2")" --cores 2 --log info --duration 300
    peer python3 "$CHECK" concurrent --host "$STACK_ADDR" --connections 200 --deadline 60
    stop_stack echo
    grep -q "2 queues spread by the driver" "$WORK/echo.log"
    local a b
    a="$(sed -n 's/^mtcp-echo\[0\]: accepted=\([0-9]*\) .*/\1/p' "$WORK/echo.log")"
    b="$(sed -n 's/^mtcp-echo\[1\]: accepted=\([0-9]*\) .*/\1/p' "$WORK/echo.log")"
    log "queue 0 accepted $a connections, queue 1 accepted $b"
    [[ -n "$a" && -n "$b" && "$a" -gt 0 && "$b" -gt 0 && $((a + b)) -eq 200 ]]
}

# net_tap makes a TAP device in the stack's namespace; that namespace's kernel is the peer.
test_tap() {
    make_files
    local tap="dt$$" address="10.78.$((RANDOM % 250 + 2))"
    tap="${tap:0:15}"
    start_stack tap "$BIN/mtcp-httpd" --backend dpdk --iface net_tap0 --addr "$address.2/24" \
        --dpdk-args "--no-huge --no-pci -m 256 --vdev=net_tap0,iface=$tap" --log info --root "$WORK/www" \
        --port 80 --duration 300
    ip netns exec "$STACK_NS" ip addr add "$address.1/24" dev "$tap"
    ip netns exec "$STACK_NS" ip link set "$tap" up
    fetch_all netns_stack_exec "$address.2"
    stop_stack tap
    grep -q "net_tap .*checksums offloaded" "$WORK/tap.log"
}

netns_setup --stack-ns dpdk
TESTS=("$@")
((${#TESTS[@]})) || TESTS=(ping httpd load queues tap)
for test in "${TESTS[@]}"; do run_test "$test"; done
echo "test-dpdk: $PASSED passed, $FAILED failed"
((FAILED == 0))
