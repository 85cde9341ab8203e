#!/usr/bin/env bash
# The stack's IPv6 against the Linux kernel over a veth (the peer namespace gets an IPv6
# address here; the harness gives it only IPv4):
#   ping6        the kernel pings the stack's global and link-local (EUI-64) addresses
#   http6        curl -6 fetches a 10 MiB file from mtcp-httpd, byte-exact, and curl -4 the same
#                file from the same (dual-stack) listener
#   bulk6        64 MiB each way to mtcp-echo over IPv6, byte-exact
#   impaired6    the same with 2% loss, 5% reordering, 1% duplication both ways (the stack's
#                seeded impairment layer: tests/interop/bpf/impair.c impairs IPv4 only)
#   concurrent6  2,000 IPv6 connections at once from the kernel to mtcp-echo
#   nd           neighbour discovery: the stack answered solicitations (ns_in, na_sent), counted
#                no IPv6 errors and no duplicate address, and the kernel's neighbour table
#                holds the stack's MAC for its addresses
# Usage: MTCP_BIN=.build/release bash tests/interop/test-ipv6.sh [TEST...]
#        (MTCP_INTEROP_QUICK=1: 4 MiB and 200 connections; MTCP_IPV6_KEEP=DIR copies every
#        test's program logs and capture there)
# Each test records the peer's side of the link (dumpcap, headers only) and prints a summary of
# it; a failing test prints the frames that matter (ICMPv6, SYN, RST).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/interop/lib/netns.sh
source "$HERE/lib/netns.sh"
# shellcheck source=tests/interop/lib/run-isolated.sh
source "$HERE/lib/run-isolated.sh"
# shellcheck source=tests/interop/lib/stack-program.sh
source "$HERE/lib/stack-program.sh"
BIN="${MTCP_BIN:-$ROOT/.build/release}"
CHECK="$HERE/tools/tcpcheck.py"
QUICK="${MTCP_INTEROP_QUICK:-0}"
KEEP="${MTCP_IPV6_KEEP:-}"
BULK=$((64 << 20))
CONCURRENT=2000
if [[ "$QUICK" == 1 ]]; then BULK=$((4 << 20)); CONCURRENT=200; fi
ALL=(ping6 http6 bulk6 impaired6 concurrent6 nd)
TESTS=("$@")
((${#TESTS[@]} > 0)) || TESTS=("${ALL[@]}")
for t in "${TESTS[@]}"; do
    [[ " ${ALL[*]} " == *" $t "* ]] || { echo "ipv6: unknown test $t (tests: ${ALL[*]})" >&2; exit 2; }
done
for tool in "$BIN/mtcp-echo" "$BIN/mtcp-httpd"; do
    [[ -x "$tool" ]] || { echo "ipv6: $tool is missing; build with: swift build -c release" >&2; exit 2; }
done
WORK="$(mktemp -d /tmp/mtcp-ipv6.XXXXXX)"
PASSED=0
FAILED=0
FAILURES=()
STACK_START_TENTHS=150


log() { printf '%s\n' "ipv6: $*"; }

# --- Servers: a test runs in a subshell (run_isolated), so the PIDs it starts are written to a
# file that the main shell reads to end whatever a failing test left running (start_stack's
# netns_track_pid is lost with the subshell, and the stack runs in the root namespace, which
# netns_cleanup does not sweep).
SERVERS="$WORK/servers"
: >"$SERVERS"

reap_servers() {
    local pid i alive
    local -a pids=()
    [[ -s "$SERVERS" ]] || return 0
    while read -r pid; do
        # Only our programs (the PID may have been reused after a clean stop).
        grep -qa "mtcp-" "/proc/$pid/cmdline" 2>/dev/null && pids+=("$pid")
    done <"$SERVERS"
    : >"$SERVERS"
    ((${#pids[@]})) || return 0
    log "ending stack programs left running: ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}
NETNS_CLEANUP_HOOKS+=("reap_servers" "rm -rf '$WORK'")

# The stack's addresses: IPv4 from the harness, IPv6 fd77:N::2/64 and fe80:: + EUI-64(MAC).
STACK6=""
PEER6=""
STACK_LL=""
ADDRS=""

# eui64_link_local MAC  prints fe80:: + the modified EUI-64 of MAC (RFC 4291 2.5.1), canonical.
eui64_link_local() {
    python3 - "$1" <<'EOF'
import ipaddress, sys
b = bytes.fromhex(sys.argv[1].replace(":", ""))
iid = bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:6]
print(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + iid))
EOF
}

# Gives the peer namespace IPv6 on PEER_IF: netns_setup turned it off there (STACK_IF keeps
# it off: the stack's kernel must not speak IPv6 for it). No DAD on the peer, so that its
# link-local address can be a source at once.
ipv6_peer_setup() {
    local net="${PREFIX##*.}"
    STACK6="fd77:$net::2"
    PEER6="fd77:$net::1"
    STACK_LL="$(eui64_link_local "$STACK_MAC")"
    ADDRS="$STACK_ADDR/24,$STACK6/64"
    netns_set_sysctl net.ipv6.conf.all.disable_ipv6 0
    netns_set_sysctl net.ipv6.conf.default.disable_ipv6 0
    netns_set_sysctl "net.ipv6.conf.$PEER_IF.accept_dad" 0
    netns_set_sysctl "net.ipv6.conf.$PEER_IF.accept_ra" 0
    netns_set_sysctl "net.ipv6.conf.$PEER_IF.disable_ipv6" 0
    ip -n "$PEER_NS" addr add "$PEER6/64" dev "$PEER_IF" nodad
    # The kernel adds the link-local address when IPv6 comes up on the (up) interface; wait
    # until it is no longer tentative (a source for ping to the stack's link-local address).
    if ! netns_wait_for 50 sh -c "ip -n '$PEER_NS' -6 addr show dev '$PEER_IF' scope link | grep 'inet6 fe80' | grep -qv tentative"; then
        log "the peer has no usable link-local address on $PEER_IF"
        ip -n "$PEER_NS" -6 addr show dev "$PEER_IF"
        return 1
    fi
    if [[ "$(netns_stack_exec cat "/proc/sys/net/ipv6/conf/$STACK_IF/disable_ipv6")" != 1 ]]; then
        log "IPv6 is on in the kernel for $STACK_IF: it would answer for the stack"
        return 1
    fi
}

# --- Captures of the peer's interface, one per test. -----------------------------------------
CAPTURE_PID=""

capture_start() {
    local name="$1" i
    command -v dumpcap >/dev/null 2>&1 || return 0
    netns_spawn dumpcap -q -i "$PEER_IF" -s 128 -a filesize:400000 -w "$WORK/$name.pcapng" \
        >"$WORK/$name.dumpcap.log" 2>&1
    CAPTURE_PID="$NETNS_LAST_PID"
    for ((i = 0; i < 50; i++)); do
        [[ -s "$WORK/$name.pcapng" ]] && return 0
        kill -0 "$CAPTURE_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "capture did not start: $(cat "$WORK/$name.dumpcap.log" 2>/dev/null)"
}

capture_stop() {
    [[ -n "$CAPTURE_PID" ]] || return 0
    sleep 0.2 # the last frames
    kill -TERM "$CAPTURE_PID" 2>/dev/null || true
    wait "$CAPTURE_PID" 2>/dev/null || true
    CAPTURE_PID=""
}

# capture_summary NAME [detail]  one line of frame counts; with detail, the ICMPv6/ARP frames,
# SYNs and RSTs (first 40) and the last 20 frames.
capture_summary() {
    local name="$1" detail="${2:-}" file="$WORK/$1.pcapng"
    command -v tshark >/dev/null 2>&1 && [[ -s "$file" ]] || return 0
    local line
    line="$(timeout 120 tshark -r "$file" -T fields -e eth.type -e icmpv6.type -e tcp.flags.syn \
        -e tcp.flags.reset -e tcp.analysis.retransmission -o tcp.analyze_sequence_numbers:TRUE 2>/dev/null |
        awk -F'\t' '
            { n++ }
            $1 == "0x86dd" { v6++ } $1 == "0x0800" { v4++ } $1 == "0x0806" { arp++ }
            $2 == 128 { ereq++ } $2 == 129 { erep++ } $2 == 135 { ns++ } $2 == 136 { na++ }
            $2 == 133 { rs++ } $2 == 143 { mld++ }
            $3 == 1 || $3 == "True" { syn++ } $4 == 1 || $4 == "True" { rst++ } $5 != "" { retrans++ }
            END { printf "%d frames: ipv6 %d ipv4 %d arp %d | icmpv6 echo-req %d echo-rep %d NS %d NA %d RS %d MLDv2 %d | tcp SYN %d RST %d retransmissions %d\n",
                n, v6, v4, arp, ereq, erep, ns, na, rs, mld, syn, rst, retrans }')" || true
    log "capture $name ($PEER_IF): ${line:-unreadable}"
    [[ -n "$detail" ]] || return 0
    echo "    --- ICMPv6, ARP, SYN and RST frames (first 40):"
    timeout 120 tshark -r "$file" -Y 'icmpv6 || arp || tcp.flags.syn == 1 || tcp.flags.reset == 1' 2>/dev/null |
        head -n 40 | sed 's/^/    /' || true
    echo "    --- last 20 frames:"
    timeout 120 tshark -r "$file" 2>/dev/null | tail -n 20 | sed 's/^/    /' || true
}

# --- Our programs and their counters. ---------------------------------------------------------

# echo_server6 LOGNAME [FLAGS...]  mtcp-echo with both addresses on the stack's veth end.
echo_server6() {
    local name="$1"
    shift
    start_stack "$name" "$BIN/mtcp-echo" --iface "$STACK_IF" --addr "$ADDRS" --duration 900 "$@"
    echo "$SERVER_PID" >>"$SERVERS"
}

# counter LOGNAME KEY  the value of " KEY=N" in the program's closing line (the first one).
counter() {
    sed -n "s/.* $2=\([0-9][0-9]*\).*/\1/p" "$WORK/$1.log" | head -n 1
}

# ipv6_counters LOGNAME  the IPv6 counters of a program's closing line, one line.
ipv6_counters() {
    local key out=""
    for key in frames_in frames_out ipv6_errors icmpv6_errors icmpv6_echo_replies ns_in na_sent \
        duplicate_addresses not_our_address malformed dropped tx_ring_full; do
        out+="$key=$(counter "$1" "$key") "
    done
    echo "$out"
}

# kernel_counter NAME  one of the peer namespace's SNMP counters (nstat, absolute).
kernel_counter() {
    peer nstat -az "$1" | awk -v name="$1" '$1 == name { print $2 }'
}

# peer_ping6 ADDRESS  five echo requests from the kernel, all answered.
peer_ping6() {
    local out="$WORK/ping6-$RANDOM.txt"
    peer ping -6 -c 5 -i 0.2 -W 2 "$1" | tee "$out"
    grep -q " 5 received" "$out"
}

run_test() {
    local name="$1" start=$SECONDS
    log "=== $name"
    capture_start "$name"
    run_isolated "test_$name"
    reap_servers
    capture_stop
    if ((ISOLATED_STATUS == 0)); then
        PASSED=$((PASSED + 1))
        capture_summary "$name"
        log "--- $name passed ($((SECONDS - start)) s)"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$name")
        capture_summary "$name" detail
        log "kernel peer: $(peer nstat -az 2>/dev/null | awk '$1 ~ /^(TcpRetransSegs|TcpInErrs|TcpOutRsts|TcpAttemptFails|Icmp6InErrors|Icmp6OutNeighborSolicits|Icmp6InNeighborAdvertisements)$/ { printf "%s=%s ", $1, $2 }')"
        peer ip -6 neigh show dev "$PEER_IF" | sed 's/^/    neigh: /' || true
        log "--- $name FAILED ($((SECONDS - start)) s)"
    fi
    if [[ -n "$KEEP" ]]; then
        mkdir -p "$KEEP"
        cp -f "$WORK/$name".* "$KEEP/" 2>/dev/null || true
        cp -f "$WORK"/*.log "$KEEP/" 2>/dev/null || true
        log "logs and capture of $name kept in $KEEP"
    fi
}

# --- Tests ------------------------------------------------------------------------------------

test_ping6() {
    echo_server6 ping6
    log "ping $STACK6 (global)"
    peer_ping6 "$STACK6"
    log "ping $STACK_LL%$PEER_IF (link-local, EUI-64 of $STACK_MAC)"
    peer_ping6 "$STACK_LL%$PEER_IF"
    stop_stack ping6
    log "stack: $(ipv6_counters ping6)"
    local replies
    replies="$(counter ping6 icmpv6_echo_replies)"
    [[ -n "$replies" && "$replies" -ge 10 ]]
}

test_http6() {
    mkdir -p "$WORK/www"
    head -c $((10 << 20)) /dev/urandom >"$WORK/www/big.bin"
    local want got
    want="$(sha256sum <"$WORK/www/big.bin" | cut -d' ' -f1)"
    start_stack httpd6 "$BIN/mtcp-httpd" --iface "$STACK_IF" --addr "$ADDRS" --root "$WORK/www" \
        --port 80 --duration 600
    echo "$SERVER_PID" >>"$SERVERS"
    rm -f "$WORK/got6.bin" "$WORK/got4.bin"
    peer curl -6 -g -sS --fail --max-time 60 -o "$WORK/got6.bin" "http://[$STACK6]:80/big.bin"
    got="$(sha256sum <"$WORK/got6.bin" | cut -d' ' -f1)"
    log "curl -6 http://[$STACK6]:80/big.bin: $(stat -c %s "$WORK/got6.bin") bytes, sha256 ${got:0:16} (want ${want:0:16})"
    [[ "$got" == "$want" ]]
    peer curl -4 -sS --fail --max-time 60 -o "$WORK/got4.bin" "http://$STACK_ADDR:80/big.bin"
    got="$(sha256sum <"$WORK/got4.bin" | cut -d' ' -f1)"
    log "curl -4 http://$STACK_ADDR:80/big.bin: $(stat -c %s "$WORK/got4.bin") bytes, sha256 ${got:0:16} (want ${want:0:16})"
    [[ "$got" == "$want" ]]
    stop_stack httpd6
    log "stack: $(ipv6_counters httpd6)"
    grep -q "served=2 " "$WORK/httpd6.log"
}

test_bulk6() {
    echo_server6 bulk6
    peer python3 "$CHECK" bulk --host "$STACK6" --bytes "$BULK"
    stop_stack bulk6
    log "stack: $(ipv6_counters bulk6)"
}

test_impaired6() {
    # Both directions in the stack's own impairment layer: the tc eBPF program (bpf/impair.c)
    # passes every frame that is not IPv4 untouched.
    local before after
    before="$(kernel_counter TcpRetransSegs)"
    echo_server6 impaired6 --impair-tx loss=0.02,dup=0.01,reorder=0.05,seed=3 \
        --impair-rx loss=0.02,dup=0.01,reorder=0.05,seed=4
    PEER_TIMEOUT=450 peer python3 "$CHECK" bulk --host "$STACK6" --bytes "$BULK" --timeout 60 --deadline 400
    after="$(kernel_counter TcpRetransSegs)"
    stop_stack impaired6
    log "stack: $(ipv6_counters impaired6)"
    log "kernel peer retransmitted $((after - before)) segments"
    # The stack's receive-side loss makes the kernel send segments again.
    ((after - before > 0))
}

test_concurrent6() {
    echo_server6 concurrent6
    peer python3 "$CHECK" concurrent --host "$STACK6" --connections "$CONCURRENT" --deadline 120
    stop_stack concurrent6
    log "stack: $(ipv6_counters concurrent6)"
    grep -q "accepted=$CONCURRENT " "$WORK/concurrent6.log"
}

test_nd() {
    # The kernel forgets the stack, so that it must ask again (multicast solicitations), and
    # confirms it later by unicast ones (once an entry goes stale).
    local ns0 na0 ns1 na1 reachable delay neigh
    # Unicast solicitations (RFC 4861 7.3.3 probes) within seconds: a reachable time of about
    # 1 s and probing 1 s after a stale entry is used. An entry's timer takes the reachable time
    # of the moment it became reachable, so this comes first.
    reachable="$(peer sysctl -n "net.ipv6.neigh.$PEER_IF.base_reachable_time_ms")"
    delay="$(peer sysctl -n "net.ipv6.neigh.$PEER_IF.delay_first_probe_time")"
    netns_set_sysctl "net.ipv6.neigh.$PEER_IF.base_reachable_time_ms" 1000
    netns_set_sysctl "net.ipv6.neigh.$PEER_IF.delay_first_probe_time" 1
    peer ip -6 neigh flush dev "$PEER_IF" || true
    ns0="$(kernel_counter Icmp6OutNeighborSolicits)"
    na0="$(kernel_counter Icmp6InNeighborAdvertisements)"
    echo_server6 nd
    peer_ping6 "$STACK6"
    peer_ping6 "$STACK_LL%$PEER_IF"
    peer python3 "$CHECK" bulk --host "$STACK6" --bytes $((1 << 20))
    # 5 s of UDP datagrams to the stack make the kernel probe: a UDP send confirms nothing
    # (ping would: it sends with MSG_CONFIRM once answered; TCP confirms on new ACKs).
    peer python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for _ in range(25):
    s.sendto(b"nud", (sys.argv[1], 9))
    time.sleep(0.2)
' "$STACK6"
    netns_set_sysctl "net.ipv6.neigh.$PEER_IF.base_reachable_time_ms" "$reachable"
    netns_set_sysctl "net.ipv6.neigh.$PEER_IF.delay_first_probe_time" "$delay"
    # Still reachable after the probes.
    peer_ping6 "$STACK6"
    ns1="$(kernel_counter Icmp6OutNeighborSolicits)"
    na1="$(kernel_counter Icmp6InNeighborAdvertisements)"
    neigh="$(peer ip -6 neigh show dev "$PEER_IF")"
    printf '%s\n' "$neigh" | sed 's/^/    neigh: /'
    stop_stack nd
    log "stack: $(ipv6_counters nd)"
    log "kernel peer: sent $((ns1 - ns0)) neighbour solicitations, received $((na1 - na0)) advertisements"
    local ns_in na_sent errors duplicates name
    ns_in="$(counter nd ns_in)"
    na_sent="$(counter nd na_sent)"
    errors="$(counter nd ipv6_errors)"
    duplicates="$(counter nd duplicate_addresses)"
    # Every program this run started, for the record (ipv6_errors must be 0 in each).
    local status=0
    for name in ping6 http6 httpd6 bulk6 impaired6 concurrent6; do
        [[ -s "$WORK/$name.log" ]] || continue
        log "  $name: $(ipv6_counters "$name")"
        if [[ "$(counter "$name" ipv6_errors)" != 0 || "$(counter "$name" duplicate_addresses)" != 0 ]]; then
            log "  $name counted IPv6 errors or a duplicate address"
            status=1
        fi
    done
    [[ -n "$ns_in" && "$ns_in" -gt 0 ]] || { log "no neighbour solicitation reached the stack"; return 1; }
    [[ -n "$na_sent" && "$na_sent" -gt 0 ]] || { log "the stack sent no neighbour advertisement"; return 1; }
    # Every solicitation the kernel sent reached the stack and was answered (multicast for the
    # two addresses, then unicast probes), and the kernel's probes happened at all.
    ((ns1 - ns0 >= 3)) || { log "the kernel sent only $((ns1 - ns0)) solicitations (no unicast probe)"; return 1; }
    ((ns_in >= ns1 - ns0)) || { log "the stack counted $ns_in solicitations, the kernel sent $((ns1 - ns0))"; return 1; }
    ((na1 - na0 >= ns1 - ns0)) ||
        { log "the kernel received $((na1 - na0)) advertisements for $((ns1 - ns0)) solicitations"; return 1; }
    [[ "$errors" == 0 ]] || { log "ipv6_errors=$errors"; return 1; }
    [[ "$duplicates" == 0 ]] || { log "duplicate_addresses=$duplicates"; return 1; }
    printf '%s\n' "$neigh" | grep -qi "^$STACK6 lladdr $STACK_MAC " ||
        { log "the kernel has no neighbour entry $STACK6 -> $STACK_MAC"; return 1; }
    printf '%s\n' "$neigh" | grep -qi "^$STACK_LL lladdr $STACK_MAC " ||
        { log "the kernel has no neighbour entry $STACK_LL -> $STACK_MAC"; return 1; }
    return "$status"
}

ulimit -n 65536 2>/dev/null || true
netns_setup ipv6
ipv6_peer_setup
log "stack $STACK_IF ($STACK_ADDR, $STACK6, $STACK_LL, $STACK_MAC) <-> kernel $PEER_IF in $PEER_NS ($PEER_ADDR, $PEER6)"
for t in "${TESTS[@]}"; do run_test "$t"; done
echo
if ((FAILED > 0)); then log "failed: ${FAILURES[*]}"; fi
echo "ipv6: $PASSED passed, $FAILED failed"
((FAILED == 0))
