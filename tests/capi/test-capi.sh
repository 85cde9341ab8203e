#!/usr/bin/env bash
# mTCP's C API (libmtcp.so, headers in shim/include) with the C examples in shim/examples:
#   build          the examples compile against shim/include with gcc -Wall -Werror and link libmtcp.so
#   bad-config     an unknown key in the config file: mtcp_init fails naming the file and line
#   server-curl    epserver on the stack serves the kernel's curl byte-exact (small file, 10 MiB,
#                  keep-alive with several requests on one connection, 404)
#   server-load    epserver serves the project's load generator (mtcp-load) with zero errors
#   server-cores   epserver with two contexts (num_cores = 2, one AF_PACKET fanout group) serves
#                  mtcp-load with zero errors, and both contexts accept connections; mtcp-stat
#                  sees it (its statistics region), stat_print logs rates every second, and
#                  each context's capture (MTCP_PCAP with %i) reads in tshark
#   api            tests/capi/api.c: one call at a time (pipes with epoll in every mode, socket
#                  options, ioctls, blocking calls and their timeouts, errors) against a kernel echo
#   client-nginx   epwget on the stack fetches from a kernel nginx (python http.server when nginx
#                  is missing, or MTCP_CAPI_PEER=python): new connection per request and persistent,
#                  zero errors, byte-exact
#   client-cores   epwget with two contexts (num_cores = 2, -N 2) against a kernel nginx: every
#                  request completes and each context's connections are answered on its own ring
# Usage: bash tests/capi/test-capi.sh [CASE...]   Needs root (network namespaces).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/interop/lib/netns.sh
source "$ROOT/tests/interop/lib/netns.sh"
# shellcheck source=tests/interop/lib/run-isolated.sh
source "$ROOT/tests/interop/lib/run-isolated.sh"
# shellcheck source=tests/interop/lib/peer-nginx.sh
source "$ROOT/tests/interop/lib/peer-nginx.sh"
BIN="${MTCP_BIN:-$ROOT/.build/release}"
WORK="$(mktemp -d /tmp/mtcp-capi.XXXXXX)"
NETNS_CLEANUP_HOOKS+=("rm -rf '$WORK'")
PASSED=0
FAILED=0
FAILURES=()

for tool in "$BIN/libmtcp.so" "$BIN/mtcp-load"; do
    [[ -e "$tool" ]] || { echo "test-capi: $tool is missing; build with: swift build -c release" >&2; exit 2; }
done

log() { printf '%s\n' "test-capi: $*"; }

run_case() {
    local name="$1" start=$SECONDS
    log "=== $name"
    run_isolated "case_${name//-/_}"
    if ((ISOLATED_STATUS == 0)); then
        PASSED=$((PASSED + 1))
        log "PASS $name ($((SECONDS - start)) s)"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$name")
        log "FAIL $name ($((SECONDS - start)) s)"
    fi
}

peer() { timeout "${PEER_TIMEOUT:-300}" ip netns exec "$PEER_NS" "$@"; }
on_stack() { timeout "${PEER_TIMEOUT:-300}" ip netns exec "$STACK_NS" "$@"; }

# The stack side's config file in mTCP's format.
write_config() {
    cat >"$WORK/mtcp.conf" <<CONF
############### mtcp configuration file ###############
io = afpacket
num_cores = 1
num_mem_ch = 4
port = $STACK_IF
max_concurrency = 10000
max_num_buffers = 10000
tcp_timeout = 30
tcp_timewait = 0
stat_print = $STACK_IF
# ours: the address mTCP took from the interface
addr = $STACK_ADDR/24
CONF
}

# Starts epserver on the stack serving $WORK/www; waits for its "serving" line.
SERVER_PID=""
start_epserver() {
    local config="${1:-$WORK/mtcp.conf}" cores="${2:-1}"
    # Its own -t bounds its life (a `timeout` wrapper would not pass SIGINT on from a script).
    # Started directly (not through a shell function) so that the PID is epserver's own.
    ip netns exec "$STACK_NS" "$BIN/epserver" -f "$config" -d "$WORK/www" -p 80 -N "$cores" -t 600 \
        >"$WORK/epserver.log" 2>&1 &
    SERVER_PID=$!
    netns_track_pid "$SERVER_PID"
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q "serving" "$WORK/epserver.log" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/epserver.log" >&2
    return 1
}

# Ends epserver (SIGINT, as mTCP's examples expect) and shows its counters.
stop_epserver() {
    kill -INT "$SERVER_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    sed 's/^/    /' "$WORK/epserver.log"
}

case_build() {
    bash "$ROOT/shim/examples/build.sh" "$BIN"
    [[ -x "$BIN/epserver" && -x "$BIN/epwget" ]]
}

case_bad_config() {
    printf 'port = lo\naddr = 10.0.0.1/24\nbogus_key = 1\n' >"$WORK/bad.conf"
    mkdir -p "$WORK/empty"
    local status=0
    "$BIN/epserver" -f "$WORK/bad.conf" -d "$WORK/empty" >"$WORK/bad.out" 2>&1 || status=$?
    sed 's/^/    /' "$WORK/bad.out"
    [[ "$status" -ne 0 ]]
    grep -q "$WORK/bad.conf:3: unknown key 'bogus_key'" "$WORK/bad.out"
    grep -q "mtcp_init failed" "$WORK/bad.out"
}

case_server_curl() {
    start_epserver
    local file
    for file in index.html small.bin big.bin; do
        peer curl -sS --fail --max-time 60 -o "$WORK/got-$file" "http://$STACK_ADDR/$file"
        cmp "$WORK/www/$file" "$WORK/got-$file"
        log "curl fetched $file ($(stat -c %s "$WORK/got-$file") bytes), byte-exact"
    done
    # Keep-alive: three requests on one connection (curl reuses it), all byte-exact.
    peer curl -sS --fail --max-time 60 -o "$WORK/k1" -o "$WORK/k2" -o "$WORK/k3" \
        "http://$STACK_ADDR/small.bin" "http://$STACK_ADDR/index.html" "http://$STACK_ADDR/big.bin" \
        -w '%{num_connects}\n' >"$WORK/connects.txt"
    cmp "$WORK/www/small.bin" "$WORK/k1"
    cmp "$WORK/www/index.html" "$WORK/k2"
    cmp "$WORK/www/big.bin" "$WORK/k3"
    [[ "$(awk '{s += $1} END {print s}' "$WORK/connects.txt")" -eq 1 ]]
    log "keep-alive: 3 requests on 1 connection, byte-exact"
    if peer curl -sS --fail --max-time 10 -o /dev/null "http://$STACK_ADDR/missing"; then return 1; fi
    stop_epserver
    grep -q "epserver\[0\]: .* errors=0" "$WORK/epserver.log"
}

# The load generator runs on its own stack on the kernel side's interface, with an address the
# kernel there does not own (so the kernel neither answers nor resets its flows).
case_server_load() {
    start_epserver
    local load_addr="${PREFIX}.3" count=2000
    ip netns exec "$PEER_NS" timeout 300 "$BIN/mtcp-load" --iface "$PEER_IF" --addr "$load_addr/24" \
        --server "$STACK_ADDR" --port 80 --path /64.bin --connections "$count" --concurrency 50 \
        --duration 120 | tee "$WORK/load.txt"
    grep -q "mtcp-load: completed=$count non2xx=0 errors=0" "$WORK/load.txt"
    ip netns exec "$PEER_NS" timeout 300 "$BIN/mtcp-load" --iface "$PEER_IF" --addr "$load_addr/24" \
        --server "$STACK_ADDR" --port 80 --path /64.bin --connections 20 --concurrency 20 \
        --requests-per-connection 100 --duration 120 | tee "$WORK/load-keepalive.txt"
    grep -q "mtcp-load: completed=2000 non2xx=0 errors=0" "$WORK/load-keepalive.txt"
    stop_epserver
    grep -q "epserver\[0\]: .* errors=0" "$WORK/epserver.log"
}

# A kernel echo server on PEER_ADDR:7 that closes when the client does.
ECHO_SERVER='
import socket, sys, threading
def serve(c):
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            c.sendall(data)
    except OSError:
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'

case_server_cores() {
    sed -e 's/^num_cores = .*/num_cores = 2/' "$WORK/mtcp.conf" >"$WORK/cores.conf"
    # Each context captures to its own file (MTCP_PCAP, %i the context).
    MTCP_PCAP="$WORK/epserver-%i.pcapng" start_epserver "$WORK/cores.conf" 2
    local load_addr="${PREFIX}.3" count=2000
    ip netns exec "$PEER_NS" timeout 300 "$BIN/mtcp-load" --iface "$PEER_IF" --addr "$load_addr/24" \
        --server "$STACK_ADDR" --port 80 --path /64.bin --connections "$count" --concurrency 50 \
        --duration 120 | tee "$WORK/load-cores.txt"
    grep -q "mtcp-load: completed=$count non2xx=0 errors=0" "$WORK/load-cores.txt"
    # mtcp-stat sees the C API process (its region), with both contexts' connections.
    if [[ -x "$BIN/mtcp-stat" ]]; then
        "$BIN/mtcp-stat" -p "$SERVER_PID" | tee "$WORK/stat-cores.txt"
        grep -q "^pid $SERVER_PID epserver (running) capi on $STACK_IF as $STACK_ADDR/24, backend afpacket, 2 instances" \
            "$WORK/stat-cores.txt"
        grep -q " passive_opens=$count " "$WORK/stat-cores.txt" || grep -q " passive_opens=$count\$" "$WORK/stat-cores.txt"
    fi
    # stat_print: a line of rates every second.
    sleep 1.2
    stop_epserver
    grep -q "^mtcp\[$SERVER_PID\]: \[all\] rx [0-9]* pps" "$WORK/epserver.log"
    grep -q "^mtcp\[$SERVER_PID\]: \[instance 1\] rx" "$WORK/epserver.log"
    if command -v tshark >/dev/null; then
        local context frames syns
        for context in 0 1; do
            frames="$(tshark -r "$WORK/epserver-$context.pcapng" 2>/dev/null | wc -l)"
            syns="$(tshark -r "$WORK/epserver-$context.pcapng" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l)"
            log "context $context captured $frames frames, $syns SYNs"
            ((frames > 100 && syns > 0))
        done
    fi
    local a b
    a="$(sed -n 's/^epserver\[0\]: accepted=\([0-9]*\) .*/\1/p' "$WORK/epserver.log")"
    b="$(sed -n 's/^epserver\[1\]: accepted=\([0-9]*\) .*/\1/p' "$WORK/epserver.log")"
    log "context 0 accepted $a connections, context 1 accepted $b"
    [[ -n "$a" && -n "$b" && "$a" -gt 0 && "$b" -gt 0 && $((a + b)) -eq $count ]]
    ! grep -q "errors=[1-9]" "$WORK/epserver.log"
}

case_api() {
    gcc -std=gnu11 -O2 -Wall -Wextra -Werror -I "$ROOT/shim/include" -o "$WORK/api" "$HERE/api.c" -lpthread \
        -L "$BIN" -lmtcp -Wl,-rpath,"$BIN"
    sed -e 's/^max_concurrency = .*/max_concurrency = 4096/' "$WORK/mtcp.conf" >"$WORK/api.conf"
    echo "rcvbuf = 65536" >>"$WORK/api.conf"
    netns_spawn python3 -c "$ECHO_SERVER" "$PEER_ADDR"
    netns_wait_for 50 peer python3 -c "import socket; socket.create_connection(('$PEER_ADDR', 7), 1).close()"
    on_stack "$WORK/api" -f "$WORK/api.conf" -s "$PEER_ADDR" -p 7 -c 9 | tee "$WORK/api.txt"
    grep -q "^api: [0-9]* checks passed, 0 failed" "$WORK/api.txt"
}

case_client_nginx() {
    mkdir -p "$WORK/peer/www"
    head -c 64 /dev/urandom >"$WORK/peer/www/64.bin"
    head -c $((1 << 20)) /dev/urandom >"$WORK/peer/www/1m.bin"
    chmod 644 "$WORK/peer/www/"*.bin
    local port=8080
    if [[ "${MTCP_CAPI_PEER:-nginx}" == nginx ]] && command -v nginx >/dev/null; then
        peer_nginx_start "$WORK/peer" "$port"
        log "kernel side: nginx"
    else
        netns_spawn python3 -m http.server --protocol HTTP/1.1 --bind "$PEER_ADDR" --directory "$WORK/peer/www" \
            "$port" >"$WORK/peer/http.log" 2>&1
        log "kernel side: python3 -m http.server"
    fi
    netns_wait_for 100 peer curl -s -o /dev/null "http://$PEER_ADDR:$port/64.bin"
    # A new connection per request.
    on_stack "$BIN/epwget" -f "$WORK/mtcp.conf" -u "$PEER_ADDR:$port/64.bin" -n 2000 -c 50 -t 120 \
        | tee "$WORK/epwget.txt"
    grep -q "epwget: completed=2000 good=2000 errors=0" "$WORK/epwget.txt"
    # Persistent connections, 100 requests each.
    on_stack "$BIN/epwget" -f "$WORK/mtcp.conf" -u "$PEER_ADDR:$port/64.bin" -n 2000 -c 20 -k 100 -t 120 \
        | tee "$WORK/epwget-k.txt"
    grep -q "epwget: completed=2000 good=2000 errors=0" "$WORK/epwget-k.txt"
    # A larger body, byte-exact.
    on_stack "$BIN/epwget" -f "$WORK/mtcp.conf" -u "$PEER_ADDR:$port/1m.bin" -n 20 -c 4 -o "$WORK/got-1m.bin" \
        -t 120 | tee "$WORK/epwget-1m.txt"
    grep -q "epwget: completed=20 good=20 errors=0" "$WORK/epwget-1m.txt"
    cmp "$WORK/peer/www/1m.bin" "$WORK/got-1m.bin"
    log "epwget fetched 1 MiB byte-exact"
}

# epwget with two contexts (num_cores = 2, a thread each) against a kernel nginx: the contexts'
# rings form one fanout group steered by the TCP port mix, and each context's active opens use
# source ports whose replies the group hands back to it (a reply on the sibling's ring would be
# reset there, and the request would fail). Every request completes, each context its own share,
# and each context's own counters (stat_print) show its connections.
case_client_cores() {
    command -v nginx >/dev/null || { log "nginx is not installed"; return 1; }
    mkdir -p "$WORK/peer-cores/www"
    head -c 64 /dev/urandom >"$WORK/peer-cores/www/64.bin"
    local port=8081 count=2000
    peer_nginx_start "$WORK/peer-cores" "$port"
    sed -e 's/^num_cores = .*/num_cores = 2/' "$WORK/mtcp.conf" >"$WORK/client-cores.conf"
    on_stack "$BIN/epwget" -f "$WORK/client-cores.conf" -u "$PEER_ADDR:$port/64.bin" -n "$count" -c 50 -N 2 \
        -t 120 >"$WORK/epwget-cores.txt" 2>&1 || true
    sed 's/^/    /' "$WORK/epwget-cores.txt" | cut -c1-200
    grep -q "^epwget: completed=$count good=$count errors=0" "$WORK/epwget-cores.txt"
    local core
    for core in 0 1; do
        grep -q "^epwget\[$core\]: completed=$((count / 2)) good=$((count / 2)) errors=0 .* init_rss=0" \
            "$WORK/epwget-cores.txt"
        # A new connection per request: each context opened exactly its own share, and no
        # segment of a sibling's flows reached it (it would have answered with a reset).
        grep -q "^mtcp\[[0-9]*\]: context $core: active_opens=$((count / 2)) .*resets_for_unknown_flows=0 " \
            "$WORK/epwget-cores.txt"
    done
    # Keep-alive: 20 connections, 100 requests each, split over the two contexts.
    on_stack "$BIN/epwget" -f "$WORK/client-cores.conf" -u "$PEER_ADDR:$port/64.bin" -n "$count" -c 20 -k 100 \
        -N 2 -t 120 >"$WORK/epwget-cores-k.txt" 2>&1 || true
    sed 's/^/    /' "$WORK/epwget-cores-k.txt" | cut -c1-200
    grep -q "^epwget: completed=$count good=$count errors=0" "$WORK/epwget-cores-k.txt"
    for core in 0 1; do
        # At least its 10 connections (a connection that served its 100 while others had not
        # is followed by another).
        grep -q "^epwget\[$core\]: completed=$((count / 2)) good=$((count / 2)) errors=0 " "$WORK/epwget-cores-k.txt"
        grep -q "^mtcp\[[0-9]*\]: context $core: active_opens=[1-9][0-9] " "$WORK/epwget-cores-k.txt"
    done
}

netns_setup --stack-ns capi
write_config
mkdir -p "$WORK/www"
echo "hello from mTCP's API on the user-level stack" >"$WORK/www/index.html"
head -c 1024 /dev/urandom >"$WORK/www/small.bin"
head -c 64 /dev/urandom >"$WORK/www/64.bin"
head -c $((10 << 20)) /dev/urandom >"$WORK/www/big.bin"

CASES=("$@")
if ((${#CASES[@]} == 0)); then CASES=(build bad-config server-curl server-load server-cores api client-nginx client-cores); fi
for name in "${CASES[@]}"; do
    if [[ "$name" != build && ! -x "$BIN/epserver" ]]; then case_build >/dev/null; fi
    run_case "$name"
done
if ((FAILED > 0)); then log "failed: ${FAILURES[*]}"; fi
echo "test-capi: $PASSED passed, $FAILED failed"
((FAILED == 0))
