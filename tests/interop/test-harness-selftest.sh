#!/usr/bin/env bash
# Self-test of the interop harness against the Linux kernel alone (no Swift stack): the
# namespace/veth library, the tc eBPF impairment (loss, duplicates, corruption) and clean-up,
# also when the test is interrupted. Needs root.
#
#   bash tests/interop/test-harness-selftest.sh
#
# Ends with 'N passed, N failed'; exits non-zero when anything failed.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/netns.sh
source "$here/lib/netns.sh"

# --- Child mode: set up, report what was created, then wait to be stopped. ---------------
# bash test-harness-selftest.sh --child STATEFILE MODE
#   MODE wait: wait (bounded) for a signal; exit0 / fail: finish normally / with status 3.
if [[ "${1:-}" == "--child" ]]; then
    state="$2" mode="$3"
    netns_setup --stack-ns selc || exit 2
    first="$PEER_NS $STACK_NS $STACK_IF $PEER_IF"
    netns_setup selc || exit 2
    netns_setup_stack_pair selc || exit 2
    pair="$STACK_A_NS $STACK_B_NS $STACK_A_IF $STACK_B_IF"
    netns_spawn sleep 300
    impair_attach "$PEER_IF" 100 0 0 || exit 2
    prog="$(_impair_ids "$PEER_IF" | cut -d' ' -f1)"
    echo "$first $PEER_NS $STACK_IF $PEER_IF $NETNS_LAST_PID ${prog:-none} $pair" >"$state.tmp"
    mv "$state.tmp" "$state"
    case "$mode" in
        exit0) exit 0 ;;
        fail) exit 3 ;;
    esac
    # A background sleep and `wait` so that a signal is handled at once.
    sleep 60 &
    netns_track_pid $!
    echo $! >"$state.sleep"
    wait $!
    exit 0
fi

# --- Tally. -------------------------------------------------------------------------------
passed=0
failed=0
# check DESCRIPTION CMD...  runs CMD; counts and prints the outcome.
check() {
    local what="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "PASS: $what"
    else
        failed=$((failed + 1))
        echo "FAIL: $what"
    fi
}
# run CMD...  prints the command, then runs it.
run() {
    echo "+ $*" >&2
    "$@"
}
between() { (($1 >= $2 && $1 <= $3)); }

if [[ "$(id -u)" != 0 ]]; then
    echo "test-harness-selftest: needs root (namespaces, veths, tc)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# Value of FIELD on the PROTO line ("Tcp", "Icmp", ...) of /proc/net/snmp in namespace NS.
snmp() {
    ip netns exec "$1" cat /proc/net/snmp | awk -v proto="$2:" -v field="$3" '
        $1 == proto && !names { for (i = 2; i <= NF; i++) col[$i] = i; names = 1; next }
        $1 == proto && names { print $(col[field]); exit }'
}

# Runs a ping from the peer namespace to the stack side; prints "sent received duplicates".
ping_stats() {
    local count="$1" out
    out="$(run timeout 60 ip netns exec "$PEER_NS" ping -n -q -c "$count" -i 0.005 -W 1 \
        "$STACK_ADDR" 2>&1)"
    echo "$out" | grep -E 'transmitted' >&2
    local sent received dups
    sent="$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')"
    received="$(echo "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')"
    dups="$(echo "$out" | sed -n 's/.*+\([0-9]*\) duplicates.*/\1/p')"
    echo "${sent:-0} ${received:-0} ${dups:-0}"
}

# --- 1. Set-up: names, addresses, kernel silence, offloads. -------------------------------
echo "== set-up"
run netns_setup selft
check "interface names fit in 15 bytes" between "${#STACK_IF}" 1 15
check "peer namespace exists" test -e "/run/netns/$PEER_NS"
check "stack side is in the root namespace" ip link show dev "$STACK_IF"
check "stack side has no IPv4 address" \
    test -z "$(ip -4 -o addr show dev "$STACK_IF")"
check "stack side has IPv6 disabled" \
    test "$(sysctl -n "net.ipv6.conf.$STACK_IF.disable_ipv6")" = 1
check "stack side is up" grep -qx up "/sys/class/net/$STACK_IF/operstate"
check "peer has $PEER_ADDR" \
    bash -c "ip -n '$PEER_NS' -4 -o addr show dev '$PEER_IF' | grep -q ' $PEER_ADDR/24 '"
check "STACK_ADDR is in the peer's /24" test "${STACK_ADDR%.*}" = "$PREFIX"
check "peer lo is up" bash -c "ip -n '$PEER_NS' link show lo | grep -q UP"
offloads_off() {
    local features
    features="$(netns_stack_exec ethtool -k "$STACK_IF"; netns_exec ethtool -k "$PEER_IF")"
    ! echo "$features" | grep -E '^(tx-checksumming|rx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload): on'
}
check "offloads off on both ends" offloads_off
run netns_set_sysctl net.ipv4.tcp_sack 0
check "netns_set_sysctl applies in the peer namespace" \
    test "$(netns_exec sysctl -n net.ipv4.tcp_sack)" = 0
check "root namespace's own setting untouched" \
    test "$(sysctl -n net.ipv4.tcp_sack)" = 1
root_if="$STACK_IF"

# Kernel to kernel: a second pair whose stack side gets its own namespace and an address.
run netns_setup --stack-ns selft
check "stack side is in its own namespace" \
    bash -c "ip -n '$STACK_NS' link show dev '$STACK_IF' >/dev/null && ! ip link show dev '$STACK_IF' 2>/dev/null"
run netns_stack_kernel_address
read -r sent received dups < <(ping_stats 20)
check "kernel-to-kernel ping without impairment: 20/20 ($received)" test "$received" = 20

# Two stack ends facing each other: no kernel address on either, silenced, offloads off.
run netns_setup_stack_pair selft
check "pair interface names fit in 15 bytes" \
    bash -c "((${#STACK_A_IF} <= 15 && ${#STACK_B_IF} <= 15))"
check "pair namespaces exist" test -e "/run/netns/$STACK_A_NS" -a -e "/run/netns/$STACK_B_NS"
pair_end_silent() {
    local ns="$1" iface="$2"
    ip -n "$ns" link show dev "$iface" | grep -q 'state UP' &&
        test -z "$(ip -n "$ns" -4 -o addr show dev "$iface")" &&
        test "$(ip netns exec "$ns" sysctl -n "net.ipv6.conf.$iface.disable_ipv6")" = 1 &&
        test "$(ip netns exec "$ns" sysctl -n "net.ipv4.conf.$iface.arp_ignore")" = 8 &&
        ! ip netns exec "$ns" ethtool -k "$iface" |
        grep -E '^(tx-checksumming|rx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload): on' &&
        ip -n "$ns" link show lo | grep -q UP
}
check "pair end A is up, has no IPv4 address, IPv6 and ARP off, offloads off" \
    pair_end_silent "$STACK_A_NS" "$STACK_A_IF"
check "pair end B likewise" pair_end_silent "$STACK_B_NS" "$STACK_B_IF"
check "pair addresses share a /24, A != B" \
    bash -c "[[ ${STACK_A_ADDR%.*} == $STACK_PAIR_PREFIX && ${STACK_B_ADDR%.*} == $STACK_PAIR_PREFIX && $STACK_A_ADDR != $STACK_B_ADDR ]]"
check "the kernel does not answer for the pair (no ping A -> B)" \
    bash -c "! ip netns exec '$STACK_A_NS' ping -n -q -c 1 -W 1 '$STACK_B_ADDR' >/dev/null 2>&1"
run netns_stack_pair_kernel_addresses
check "with kernel addresses, A pings B" \
    bash -c "ip netns exec '$STACK_A_NS' ping -n -q -c 3 -i 0.2 -W 2 '$STACK_B_ADDR' >/dev/null"

# --- 2. Loss. -----------------------------------------------------------------------------
echo "== loss 300 per mille on $PEER_IF egress (ICMP)"
run impair_attach "$PEER_IF" 300 0 0 1
read -r sent received dups < <(ping_stats 200)
lost=$((sent - received))
echo "counters: $(impair_counters "$PEER_IF")"
dropped="$(impair_counter "$PEER_IF" dropped)"
check "ping sent all 200 (drops are silent, no ENOBUFS retries): $sent" test "$sent" = 200
check "some but not all lost: $lost of 200" between "$lost" 20 120
check "counters show drops: $dropped" between "${dropped:-0}" 20 120
check "every loss is a counted drop ($lost = $dropped)" test "$lost" = "${dropped:-x}"
check "seen counts every echo request: $(impair_counter "$PEER_IF" seen)" \
    test "$(impair_counter "$PEER_IF" seen)" = 200

# --- 3. Duplicates. -----------------------------------------------------------------------
echo "== duplicate 300 per mille (ICMP)"
run impair_set "$PEER_IF" 0 300 0 1
before="$(impair_counter "$PEER_IF" duplicated)"
read -r sent received dups < <(ping_stats 100)
duplicated=$(($(impair_counter "$PEER_IF" duplicated) - before))
check "no loss with duplicates only: $received/100" test "$received" = 100
check "ping saw DUP! replies: $dups" between "$dups" 5 70
check "counters show duplicates: $duplicated" between "$duplicated" 5 70
check "no duplicate of a duplicate (DUP! <= duplicated)" test "$dups" -le "$duplicated"

# --- 4. Corruption is detected by the receiver. --------------------------------------------
echo "== corrupt 300 per mille (ICMP)"
run impair_set "$PEER_IF" 0 0 300 1
csum_before="$(snmp "$STACK_NS" Icmp InCsumErrors)"
before="$(impair_counter "$PEER_IF" corrupted)"
read -r sent received dups < <(ping_stats 100)
corrupted=$(($(impair_counter "$PEER_IF" corrupted) - before))
csum_errors=$(($(snmp "$STACK_NS" Icmp InCsumErrors) - csum_before))
lost=$((sent - received))
check "counters show corruption: $corrupted" between "$corrupted" 10 60
check "receiver counted ICMP checksum errors: $csum_errors" test "$csum_errors" -gt 0
check "every corrupted request went unanswered ($lost lost, $corrupted corrupted)" \
    test "$lost" = "$corrupted"

# --- 5. TCP: default protocol, loss and corruption under a transfer. ----------------------
echo "== TCP transfer with loss 20 and corrupt 20 per mille"
run impair_set "$PEER_IF" 20 0 20
payload="$_NETNS_TMPDIR/payload" received_file="$_NETNS_TMPDIR/received"
head -c 3000000 /dev/urandom >"$payload"
tcp_csum_before="$(snmp "$STACK_NS" Tcp InCsumErrors)"
retrans_before="$(snmp "$PEER_NS" Tcp RetransSegs)"
seen_before="$(impair_counter "$PEER_IF" seen)"
corrupted_before="$(impair_counter "$PEER_IF" corrupted)"
netns_stack_spawn timeout 60 nc -l "$STACK_ADDR" 5001 >"$received_file"
server=$NETNS_LAST_PID
listening() { netns_stack_exec ss -Hltn "sport = :5001" | grep -q .; }
check "server listening" netns_wait_for 100 listening
run netns_exec timeout 60 nc -N "$STACK_ADDR" 5001 <"$payload"
wait "$server"
check "all 3000000 bytes arrived intact" cmp -s "$payload" "$received_file"
tcp_csum=$(($(snmp "$STACK_NS" Tcp InCsumErrors) - tcp_csum_before))
retrans=$(($(snmp "$PEER_NS" Tcp RetransSegs) - retrans_before))
tcp_seen=$(($(impair_counter "$PEER_IF" seen) - seen_before))
echo "counters: $(impair_counters "$PEER_IF"); receiver TCP checksum errors $tcp_csum; sender retransmissions $retrans"
tcp_corrupted=$(($(impair_counter "$PEER_IF" corrupted) - corrupted_before))
# 3000000 bytes are at least 2072 segments of 1448 bytes: one packet per segment at egress.
check "one segment per packet at the peer's egress (no GSO): $tcp_seen seen" \
    test "$tcp_seen" -ge 2072
check "segments were corrupted: $tcp_corrupted" test "$tcp_corrupted" -gt 0
check "receiver's kernel rejected each corrupted TCP segment: $tcp_csum = $tcp_corrupted" \
    test "$tcp_csum" = "$tcp_corrupted"
check "sender retransmitted: $retrans" test "$retrans" -gt 0

echo "== only the chosen protocol is impaired"
run impair_set "$PEER_IF" 1000 0 0 6
read -r sent received dups < <(ping_stats 10)
check "ICMP (and ARP) pass while TCP loss is 1000 per mille: $received/10" test "$received" = 10
run impair_detach "$PEER_IF"

echo "== ingress: loss and duplicates on frames arriving at $STACK_IF (ICMP)"
run impair_attach --ingress "$STACK_IF" 300 300 0 1
read -r sent received dups < <(ping_stats 100)
echo "counters: $(impair_counters "$STACK_IF")"
lost=$((sent - received))
check "ingress loss: $lost of 100 = dropped $(impair_counter "$STACK_IF" dropped)" \
    test "$lost" = "$(impair_counter "$STACK_IF" dropped)"
check "ingress loss: some but not all: $lost" between "$lost" 5 70
check "ingress duplicates reach the receiver (DUP! $dups)" between "$dups" 3 70
run impair_detach "$STACK_IF"
check "impair_detach removed the clsact qdisc" \
    bash -c "! tc -n '$PEER_NS' qdisc show dev '$PEER_IF' | grep -q clsact"

# --- 6. Clean-up, also when interrupted. --------------------------------------------------
# Checks that nothing named in STATEFILE is left: namespaces, veths, spawned process, BPF.
# Namespace deletion finishes in the background, so look again for up to 3 s.
nothing_left() {
    netns_wait_for 30 nothing_left_now "$1"
    nothing_left_now "$1"
}
nothing_left_now() {
    local state="$1" ns1 sns1 sif1 pif1 ns2 sif2 pif2 pid prog ans bns aif bif
    read -r ns1 sns1 sif1 pif1 ns2 sif2 pif2 pid prog ans bns aif bif <"$state"
    local left=""
    for ns in "$ns1" "$sns1" "$ns2" "$ans" "$bns"; do
        ip netns list | grep -qw "^$ns" && left+=" netns:$ns"
    done
    for link in "$sif1" "$pif1" "$sif2" "$pif2" "$aif" "$bif"; do
        ip link show dev "$link" >/dev/null 2>&1 && left+=" link:$link"
    done
    wait_gone "$pid" || left+=" pid:$pid"
    local cpid="${ns1#mtcp-selc-}"
    compgen -G "/tmp/netns-selc-${cpid%%-*}.*" >/dev/null && left+=" tmpdir"
    [[ "$prog" != none ]] && bpftool prog show id "$prog" >/dev/null 2>&1 && left+=" bpf:$prog"
    [[ -z "$left" ]] || echo "left behind:$left" >&2
    [[ -z "$left" ]]
}
everything_there() {
    local ns1 sns1 sif1 pif1 ns2 sif2 pif2 pid prog ans bns aif bif
    read -r ns1 sns1 sif1 pif1 ns2 sif2 pif2 pid prog ans bns aif bif <"$1"
    [[ -e "/run/netns/$ns1" && -e "/run/netns/$sns1" && -e "/run/netns/$ns2" ]] &&
        [[ -e "/run/netns/$ans" && -e "/run/netns/$bns" ]] &&
        ip link show dev "$sif2" >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null
}
# Waits (bounded: 30 s, as a loaded machine may take over 10 s to delete the namespaces) until
# PID is gone.
wait_gone() {
    local pid="$1" i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# child_run MODE SIGNAL  starts a child test, lets it set up, stops it with SIGNAL (or lets it
# end by itself when SIGNAL is -), then checks that it left nothing behind.
child_run() {
    local mode="$1" signal="$2" state="$_NETNS_TMPDIR/child-$1-$2" log="$_NETNS_TMPDIR/log-$1-$2"
    echo "== child: $mode, stopped by ${signal/-/its own exit}"
    rm -f "$state"
    # Job control on, so that the child does not start with SIGINT ignored (as background
    # jobs of a script otherwise do) and its INT trap works.
    set -m
    NETNS_DIAG_ON_FAILURE=1 bash "$0" --child "$state" "$mode" >"$log" 2>&1 &
    local child=$!
    set +m
    check "child ($mode) set up" netns_wait_for 200 test -s "$state"
    [[ -s "$state" ]] || { cat "$log"; kill -KILL "$child" 2>/dev/null; return; }
    if [[ "$signal" != - ]]; then
        check "child ($mode) resources exist before the signal" everything_there "$state"
        run kill "-$signal" "$child"
    fi
    check "child ($mode, $signal) ended" wait_gone "$child"
    wait "$child" 2>/dev/null
    local status=$?
    echo "child exit status $status"
    if [[ "$signal" == KILL ]]; then
        check "SIGKILL leaves namespaces behind (sweep needed)" everything_there_but_pid "$state"
        run netns_sweep_stale selc
        # The child's own background sleep outlives a SIGKILL too.
        [[ -s "$state.sleep" ]] && kill "$(cat "$state.sleep")" 2>/dev/null
    fi
    check "child ($mode, $signal) left nothing behind" nothing_left "$state"
    if [[ "$mode" == fail ]]; then
        check "failing child printed diagnostics" grep -q "netns_diag" "$log"
        check "failing child kept its exit status 3" test "$status" = 3
    fi
}
everything_there_but_pid() {
    local ns1 rest
    local ans bns
    read -r ns1 _ _ _ _ _ _ _ _ ans bns rest <"$1"
    [[ -e "/run/netns/$ns1" && -e "/run/netns/$ans" && -e "/run/netns/$bns" ]]
}

child_run wait TERM
child_run wait INT
# A shell cannot trap a signal ignored when it started (a run under nohup ignores SIGHUP), so
# the HUP case is only meaningful when SIGHUP is not ignored here.
if (( (0x$(awk '/^SigIgn:/ {print $2}' /proc/$$/status) & 1) == 0 )); then
    child_run wait HUP
else
    echo "== child: wait, stopped by HUP: skipped (SIGHUP is ignored by whoever started this run, e.g. nohup)"
fi
child_run exit0 -
child_run fail -
child_run wait KILL

echo "== idempotent clean-up"
run netns_cleanup
run netns_cleanup
check "second netns_cleanup is harmless; root-side veth $root_if gone" \
    bash -c "! ip link show dev '$root_if' 2>/dev/null"
check "no namespace of this run left" \
    bash -c "! ip netns list | grep -q -- '-$$-'"

echo "$passed passed, $failed failed"
((failed == 0))
