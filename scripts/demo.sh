#!/usr/bin/env bash
# The project's main job: the user-level stack serving real Linux clients.
#
# It makes a network namespace and a veth pair (removed again on exit, also on failure), runs
# mtcp-httpd on our stack on the root-side end of the veth (no kernel address on it), and from
# the namespace the kernel's own ping and curl talk to it. Then it prints the stack's counters,
# and last runs the simulation demo (the TCP core over a lossy simulated link).
#
#   bash scripts/demo.sh            # both parts
#   bash scripts/demo.sh --veth     # only the veth part
#   bash scripts/demo.sh --sim ...  # only the simulation; further arguments go to mtcp-sim-demo
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"
mtcp_install_deps

MODE="both"
if [[ "${1:-}" == "--veth" || "${1:-}" == "--sim" ]]; then
    MODE="${1#--}"
    shift
fi

echo "demo.sh: building (release)"
swift build -c release </dev/null
BIN="$(swift build -c release --show-bin-path </dev/null)"

veth_demo() {
    # shellcheck source=tests/interop/lib/netns.sh
    source "$ROOT/tests/interop/lib/netns.sh"
    netns_setup demo
    local www
    www="$(mktemp -d /tmp/mtcp-demo.XXXXXX)"
    NETNS_CLEANUP_HOOKS+=("rm -rf '$www'")
    echo "<h1>Hello from a user-level TCP stack in Swift</h1>" >"$www/index.html"
    head -c $((8 << 20)) /dev/urandom >"$www/8MiB.bin"
    echo
    echo "demo.sh: our stack owns $STACK_IF as $STACK_ADDR ($STACK_MAC); the kernel has $PEER_ADDR in namespace $PEER_NS"
    "$BIN/mtcp-httpd" --iface "$STACK_IF" --addr "$STACK_ADDR/24" --root "$www" --port 80 --duration 120 \
        >"$www/httpd.log" 2>&1 &
    local server=$!
    netns_track_pid "$server"
    local i
    for i in $(seq 1 100); do grep -q serving "$www/httpd.log" && break; sleep 0.1; done
    echo
    echo "\$ ping -c 3 $STACK_ADDR            (kernel -> stack, ICMP echo answered by our stack)"
    ip netns exec "$PEER_NS" ping -c 3 -i 0.2 "$STACK_ADDR"
    echo
    echo "\$ curl http://$STACK_ADDR/         (kernel TCP client -> our TCP + HTTP server)"
    ip netns exec "$PEER_NS" curl -sS --max-time 20 "http://$STACK_ADDR/"
    echo
    echo "\$ curl -o file http://$STACK_ADDR/8MiB.bin"
    ip netns exec "$PEER_NS" curl -sS --max-time 60 -o "$www/got.bin" \
        -w "fetched %{size_download} bytes at %{speed_download} bytes/s\n" "http://$STACK_ADDR/8MiB.bin"
    if cmp -s "$www/8MiB.bin" "$www/got.bin"; then echo "byte-exact: yes"; else echo "byte-exact: NO"; fi
    kill -TERM "$server"
    wait "$server" || true
    echo
    echo "our stack's counters:"
    tr ' ' '\n' <"$www/httpd.log" | grep "=" | sed 's/^/    /'
    netns_cleanup
}

if [[ "$MODE" != "sim" ]]; then veth_demo; fi
if [[ "$MODE" != "veth" ]]; then
    echo
    echo "demo.sh: the TCP core over a simulated lossy network: $BIN/mtcp-sim-demo $*"
    "$BIN/mtcp-sim-demo" "$@"
fi
