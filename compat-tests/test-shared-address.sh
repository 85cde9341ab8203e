#!/usr/bin/env bash
# Shared mode (issue 13, item 2): the stack on an address the kernel already has on the same
# veth. The kernel owns STACK_ADDR on STACK_IF; nginx (2 workers) runs under the library with no
# MTCP_ADDR (the library takes the interface's address) on port 8080, and a kernel server
# (python3 -m http.server) on port 9000 of the same address. Checked from the peer:
#   - both answer, each on its port;
#   - 10,000 short connections to nginx with zero RSTs from port 8080, counted by tshark on the
#     peer's end of the veth (the kernel would RST every stack flow it saw; the stack would RST
#     the kernel's), while a closed port still gets the kernel's RST (the capture works, and
#     ports that are nobody's stay the kernel's);
#   - ping answered by the kernel, once per request (no duplicates from the stack);
#   - a port the kernel listens on stays the kernel's: binding it under the library fails with
#     EADDRINUSE;
#   - the stack left the ARP requests and echo requests it saw to the kernel (left_to_kernel);
#   - with the peer's offloads back on (its TSO sends 64 KiB frames), 256 MiB upload byte-exact.
# COMPAT_MODE=kernel runs the same checks with nginx on the kernel too.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cshare
# The kernel has the address (compat_setup gives it in kernel mode already).
if [[ "$COMPAT_MODE" != kernel ]]; then netns_stack_kernel_address; fi
export COMPAT_SHARED_ADDRESS=1
CONNECTIONS="${SHARED_CONNECTIONS:-10000}"
STACK_PORT=8080
KERNEL_PORT=9000
CLOSED_PORT=8099
TOOLS="$COMPAT_DIR/tools"

N="$WORK/nginx"
nginx_config "$N" "$STACK_PORT"
sed -i "s/^worker_processes auto;/worker_processes 2;/" "$N/nginx.conf"
make_www "$N/www"
mkdir -p "$WORK/kwww"
printf 'the kernel answers\n' >"$WORK/kwww/index.html"

kernel_server_up() {
    timeout -k 5 300 ip netns exec "$STACK_NS" python3 -m http.server "$KERNEL_PORT" --bind "$STACK_ADDR" \
        --directory "$WORK/kwww" >"$WORK/kernel-server.log" 2>&1 &
    netns_track_pid "$!"
    wait_tcp_port "$PEER_NS" "$STACK_ADDR" "$KERNEL_PORT"
}
check "a kernel server listens on $STACK_ADDR:$KERNEL_PORT" kernel_server_up

stack_nginx_up() {
    on_stack 30 nginx nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-start.log" 2>&1 &&
        netns_wait_for 100 test -s "$N/nginx.pid" && wait_tcp_port "$PEER_NS" "$STACK_ADDR" "$STACK_PORT"
    local status=$?
    cat "$WORK/nginx-start.log"
    return $status
}
check "nginx (2 workers, no MTCP_ADDR) listens on $STACK_ADDR:$STACK_PORT" stack_nginx_up

# both_answer  each server answers on its own port with its own page.
both_answer() {
    local stack kernel
    stack="$(in_peer 10 curl -s --max-time 5 "http://$STACK_ADDR:$STACK_PORT/index.html" || true)"
    kernel="$(in_peer 10 curl -s --max-time 5 "http://$STACK_ADDR:$KERNEL_PORT/index.html" || true)"
    echo "port $STACK_PORT: $stack" >&2
    echo "port $KERNEL_PORT: $kernel" >&2
    [[ "$stack" == *"hello from compat-tests"* && "$kernel" == "the kernel answers" ]]
}
check "nginx and the kernel's server both answer on one address" both_answer

# The capture: every RST the peer receives, from the start of the load to its end.
CAPTURE="$WORK/resets.pcapng"
capture_up() {
    timeout -k 5 300 ip netns exec "$PEER_NS" tshark -n -q -i "$PEER_IF" -w "$CAPTURE" \
        -f "tcp[tcpflags] & tcp-rst != 0 and src host $STACK_ADDR" >"$WORK/tshark.log" 2>&1 &
    CAPTURE_PID=$!
    netns_track_pid "$CAPTURE_PID"
    netns_wait_for 100 grep -q "Capturing on" "$WORK/tshark.log"
}
check "tshark captures the RSTs the peer receives" capture_up

load() {
    local line
    line="$(in_peer 200 python3 "$TOOLS/short_connections.py" --host "$STACK_ADDR" --port "$STACK_PORT" \
        --count "$CONNECTIONS" --threads 8 --deadline 180 || true)"
    echo "nginx under the library: $line" >&2
    [[ "$line" == "ok=$CONNECTIONS failed=0 reset=0 refused=0 "* ]]
}
check "$CONNECTIONS short connections to nginx on the shared address: all answered" load

kernel_load() {
    local line
    line="$(in_peer 60 python3 "$TOOLS/short_connections.py" --host "$STACK_ADDR" --port "$KERNEL_PORT" \
        --count 200 --threads 4 --deadline 50 || true)"
    echo "the kernel's server: $line" >&2
    [[ "$line" == "ok=200 failed=0 reset=0 refused=0 "* ]]
}
check "200 short connections to the kernel's server on the same address: all answered" kernel_load

closed_port() {
    local code
    code="$(in_peer 10 curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$STACK_ADDR:$CLOSED_PORT/" || true)"
    echo "port $CLOSED_PORT (nobody's): curl says $code" >&2
    [[ "$code" == 000 ]]
}
check "a port nobody listens on is refused" closed_port

ping_once_each() {
    local out
    out="$(in_peer 20 ping -c 5 -i 0.2 -W 2 "$STACK_ADDR" 2>&1 || true)"
    echo "$out" | tail -n 3 >&2
    [[ "$out" == *"5 packets transmitted, 5 received"* && "$out" != *"DUP!"* ]]
}
check "ping is answered by the kernel, once per request" ping_once_each

count_resets() {
    sleep 1
    kill -INT "$CAPTURE_PID" 2>/dev/null || true
    wait "$CAPTURE_PID" 2>/dev/null || true
    local from_stack from_closed
    from_stack="$(timeout 120 tshark -n -r "$CAPTURE" -Y "tcp.srcport == $STACK_PORT" 2>/dev/null | wc -l)"
    from_closed="$(timeout 120 tshark -n -r "$CAPTURE" -Y "tcp.srcport == $CLOSED_PORT" 2>/dev/null | wc -l)"
    echo "RSTs the peer received: $from_stack from port $STACK_PORT, $from_closed from port $CLOSED_PORT" >&2
    timeout 60 tshark -n -r "$CAPTURE" 2>/dev/null | head -n 10 >&2 || true
    ((from_stack == 0 && from_closed >= 1))
}
check "zero RSTs from port $STACK_PORT during the load (the closed port's RST was captured)" count_resets

kernel_port_kept() {
    local out
    out="$(on_stack 20 bind-probe python3 -c "
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(('0.0.0.0', $KERNEL_PORT))
    s.listen(8)
    print('bound')
except OSError as e:
    print('errno', e.errno)
" 2>&1 || true)"
    echo "bind 0.0.0.0:$KERNEL_PORT on the stack side: $out" >&2
    [[ "$out" == *"errno 98"* ]]
}
check "the kernel's port stays the kernel's: binding it under the library fails with EADDRINUSE" kernel_port_kept

# The kernel as users run it: the peer gets veth's default offloads back, so its TCP sends
# 64 KiB GSO frames (and leaves checksums to "hardware"). A 256 MiB upload to a program under
# the library must arrive byte-exact, the large frames taken whole (link_large_frames_in).
upload_with_offloads() {
    ip netns exec "$PEER_NS" ethtool -K "$PEER_IF" tx on sg on tso on gso on >/dev/null 2>&1 || true
    ip -n "$PEER_NS" link set dev "$PEER_IF" gso_max_segs 65535 || return 1
    ip netns exec "$PEER_NS" ethtool -k "$PEER_IF" | grep -E '^(tcp-segmentation-offload|tx-checksumming):' >&2
    stack_spawn "$WORK/upload-server.out" "$STACK_NS" "$STACK_IF" "$STACK_ADDR" 120 upload \
        python3 "$TOOLS/bulk_transfer.py" serve 7000
    local server=$SPAWNED sent received
    netns_wait_for 100 grep -q listening "$WORK/upload-server.out" || return 1
    sent="$(in_peer 120 python3 "$TOOLS/bulk_transfer.py" send "$STACK_ADDR" 7000 256 || true)"
    wait "$server" || true
    received="$(grep '^received=' "$WORK/upload-server.out" || true)"
    echo "peer: $sent; under the library: $received" >&2
    [[ -n "$received" && "${sent#sent=}" == "${received#received=}" ]] || return 1
    [[ "$COMPAT_MODE" == kernel ]] && return 0
    local large drops
    large="$(stats_sum upload link_large_frames_in)"
    drops="$(stats_sum upload rx_drops)"
    echo "large frames taken whole: $large; receive drops: $drops" >&2
    ((large > 0))
}
check "256 MiB from a peer with veth's default offloads (64 KiB GSO frames) arrive byte-exact" upload_with_offloads

left_to_kernel() {
    nginx_quit "$N" || return 1
    [[ "$COMPAT_MODE" == kernel ]] && return 0
    local left opens
    left="$(stats_sum nginx left_to_kernel)"
    opens="$(stats_sum nginx passive_opens)"
    echo "nginx's stacks: passive_opens $opens, left_to_kernel $left" >&2
    ((left > 0 && opens >= CONNECTIONS))
}
check "the stack carried every connection and left ARP and echo requests to the kernel" left_to_kernel

compat_dump_on_failure
compat_finish
