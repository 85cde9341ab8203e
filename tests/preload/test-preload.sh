#!/usr/bin/env bash
# Socket semantics of libmtcp-preload.so: C programs (compiled here with gcc) run under the
# library in a namespace whose veth has no kernel address, against the kernel's TCP in the
# peer namespace (tests/preload/peer.py). Most cases also run without the library in a second
# pair where the kernel owns the stack side's address: the kernel's behaviour is what the
# library must match, and a case that fails there is a broken test, not a library bug.
#
#   bash tests/preload/test-preload.sh [CASE...]     # every case, or only those named
#   MTCP_BIN=DIR            where libmtcp-preload.so is (default .build/release; built if missing)
#   MTCP_PRELOAD_LOG=debug  runs the library with MTCP_LOG=debug (shown for failing cases)
#   MTCP_PRELOAD_STATS=PATH writes the library's counters to PATH.CASE.PID (MTCP_STATS)
#   MTCP_PRELOAD_CORES=N    runs the library with N stack instances per process (MTCP_CORES)
#   MTCP_PRELOAD_BUSY_POLL=U   epoll_wait busy-polls U microseconds before sleeping (MTCP_BUSY_POLL)
#   MTCP_PRELOAD_RUNTIME=SO a sanitizer runtime preloaded before the library (a TSan build of it)
#
# The dualstack6 cases (IPv6) give the library an IPv6 address too (MTCP_ADDR=A/24,fd77:N::2/64),
# the peer fd77:N::1 (and the kernel's pair fd77:M::2 on the stack side), and a second peer
# server (peer6.py below, dual-stack on PEER6_PORT). Their stack run must print the same "| "
# lines as the kernel's run, and its counters (MTCP_STATS) must show the connections it carried.
#
# The hostile cases (hostile.c) hand every call the library exports hostile arguments (bad
# pointers, lengths, counts, descriptors) and print each result and errno in "| " lines; their
# stack run must print exactly the kernel run's lines.
#
# Prints "PASS CASE (stack|kernel)" or "FAIL ..." per run and ends with
# "test-preload: N passed, M failed"; exits 1 when any run failed. Needs root, gcc, python3.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=tests/interop/lib/netns.sh
source "$ROOT/tests/interop/lib/netns.sh"
BIN="${MTCP_BIN:-$ROOT/.build/release}"
LIB="$BIN/libmtcp-preload.so"
PEER_PORT=7000
PEER6_PORT=7006
CASE_TIMEOUT=20
PASSED=0
FAILED=0
FAILURES=()

log() { printf '%s\n' "test-preload: $*"; }

if [[ ! -f "$LIB" ]]; then
    log "building libmtcp-preload.so"
    (cd "$ROOT" && swift build -c release --product mtcp-preload </dev/null) >&2
    LIB="$ROOT/.build/release/libmtcp-preload.so"
fi

WORK="$(mktemp -d /tmp/mtcp-preload.XXXXXX)"
NETNS_CLEANUP_HOOKS+=("rm -rf '$WORK'")
NETNS_DIAG_ON_FAILURE=0

# --- The test programs. ------------------------------------------------------------------
for source in "$HERE"/*.c; do
    program="$(basename "$source" .c)"
    gcc -O1 -g -Wall -Wextra -Wno-unused-function -Werror -o "$WORK/$program" "$source"
done

# --- Two pairs: the library's (no kernel address on the stack side) and the kernel's. -------
netns_setup --stack-ns pl >/dev/null 2>&1
S_NS="$STACK_NS" S_IF="$STACK_IF" S_ADDR="$STACK_ADDR" S_PEER_NS="$PEER_NS" S_PEER="$PEER_ADDR"
S_PEER_IF="$PEER_IF"
netns_setup --stack-ns plk >/dev/null 2>&1
netns_stack_kernel_address
K_NS="$STACK_NS" K_ADDR="$STACK_ADDR" K_PEER_NS="$PEER_NS" K_PEER="$PEER_ADDR"
K_IF="$STACK_IF" K_PEER_IF="$PEER_IF"

start_peer() {
    local ns="$1" stack_addr="$2" ready="$3" i
    ip netns exec "$ns" python3 "$HERE/peer.py" "$PEER_PORT" "$stack_addr" "$ready" >"$ready.log" 2>&1 &
    netns_track_pid $!
    for ((i = 0; i < 100; i++)); do
        [[ -s "$ready" ]] && return 0
        sleep 0.1
    done
    log "the peer in $ns did not start"
    cat "$ready.log" >&2
    return 1
}
start_peer "$S_PEER_NS" "$S_ADDR" "$WORK/peer-stack.ready"
start_peer "$K_PEER_NS" "$K_ADDR" "$WORK/peer-kernel.ready"

# --- IPv6 for the dualstack6 cases. ---------------------------------------------------------
# ipv6_on NS IFACE ADDRESS: IPv6 on IFACE in NS (netns_setup turned it off) with ADDRESS/64,
# no DAD, and waits until its link-local address is usable (as tests/interop/test-ipv6.sh).
# Only the kernel pair's stack side and the peers: the library's stack side keeps IPv6 off in
# the kernel, so that only the stack can carry IPv6 there.
ipv6_on() {
    local ns="$1" iface="$2" address="$3" i
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.disable_ipv6=0 >/dev/null
    ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$iface.accept_dad=0" >/dev/null
    ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$iface.accept_ra=0" >/dev/null
    ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$iface.disable_ipv6=0" >/dev/null
    ip -n "$ns" addr add "$address/64" dev "$iface" nodad
    for ((i = 0; i < 50; i++)); do
        ip -n "$ns" -6 addr show dev "$iface" scope link | grep 'inet6 fe80' | grep -qv tentative && return 0
        sleep 0.1
    done
    log "no usable link-local address on $iface in $ns"
    ip -n "$ns" -6 addr show dev "$iface" >&2
    return 1
}
S_NET="$(cut -d. -f3 <<<"$S_ADDR")" K_NET="$(cut -d. -f3 <<<"$K_ADDR")"
S_ADDR6="fd77:$S_NET::2" S_PEER6="fd77:$S_NET::1" K_ADDR6="fd77:$K_NET::2" K_PEER6="fd77:$K_NET::1"
ipv6_on "$S_PEER_NS" "$S_PEER_IF" "$S_PEER6"
ipv6_on "$K_PEER_NS" "$K_PEER_IF" "$K_PEER6"
ipv6_on "$K_NS" "$K_IF" "$K_ADDR6"
if [[ "$(ip netns exec "$S_NS" cat "/proc/sys/net/ipv6/conf/$S_IF/disable_ipv6")" != 1 ]]; then
    log "IPv6 is on in the kernel for $S_IF: it would answer for the stack"
    exit 1
fi

# The peers' IPv6 server: dual-stack [::]:PEER6_PORT (commands in tests/preload/dualstack6.c).
cat >"$WORK/peer6.py" <<'PEER6'
import socket, sys, threading

def read_line(sock):
    data = b""
    while b"\n" not in data:
        more = sock.recv(1)
        if not more:
            return None
        data += more
    return data.decode().strip()

def echo(sock):
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        sock.sendall(data)

def name(address):
    return f"{address[0]} {address[1]}"

def handle(sock, stack6):
    try:
        words = (read_line(sock) or "?").split()
        if words[0] == "WHO":
            sock.sendall(f"REMOTE {name(sock.getpeername())} LOCAL {name(sock.getsockname())}\n".encode())
            echo(sock)
        elif words[0] == "CONNECT6":
            other = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            other.settimeout(10)
            try:
                other.connect((stack6, int(words[1])))
            except OSError as error:
                sock.sendall(f"ERR {error.errno}\n".encode())
                other.close()
                return
            other.settimeout(None)
            sock.sendall(f"OK {name(other.getsockname())}\n".encode())
            try:
                echo(other)
            finally:
                other.close()
        else:
            sock.sendall(f"ERR unknown command {words[0]}\n".encode())
    except OSError:
        pass
    finally:
        sock.close()

port, stack6, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
server.bind(("::", port))
server.listen(64)
with open(ready, "w") as f:
    f.write("ready\n")
while True:
    sock, _ = server.accept()
    threading.Thread(target=handle, args=(sock, stack6), daemon=True).start()
PEER6
start_peer6() {
    local ns="$1" stack6="$2" ready="$3" i
    ip netns exec "$ns" python3 "$WORK/peer6.py" "$PEER6_PORT" "$stack6" "$ready" >"$ready.log" 2>&1 &
    netns_track_pid $!
    for ((i = 0; i < 100; i++)); do
        [[ -s "$ready" ]] && return 0
        sleep 0.1
    done
    log "the IPv6 peer in $ns did not start"
    cat "$ready.log" >&2
    return 1
}
start_peer6 "$S_PEER_NS" "$S_ADDR6" "$WORK/peer6-stack.ready"
start_peer6 "$K_PEER_NS" "$K_ADDR6" "$WORK/peer6-kernel.ready"

# end_leftovers NS: a case's forked children that outlived it must not serve the next case
# (the stack picks the same first ephemeral port in every process).
end_leftovers() {
    local pid
    for pid in $(ip netns pids "$1" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# run MODE PROGRAM CASE [VAR=VALUE...]: one program case; MODE is
#   stack     under the library (MTCP_IFACE/MTCP_ADDR set), no kernel address
#   kernel    without the library, the kernel owning the stack side's address
#   plain     without the library, no kernel address (what the library hides)
run() {
    local mode="$1" program="$2" name="$3"
    shift 3
    local label="$name ($mode)" out="$WORK/$name.$mode.log" status=0
    local -a environment=()
    case "$mode" in
        stack)
            environment=(PEER_ADDR="$S_PEER" STACK_ADDR="$S_ADDR" PEER_ADDR6="$S_PEER6" STACK_ADDR6="$S_ADDR6"
                LD_PRELOAD="${MTCP_PRELOAD_RUNTIME:+$MTCP_PRELOAD_RUNTIME }$LIB" MTCP_IFACE="$S_IF"
                MTCP_ADDR="$S_ADDR/24")
            [[ -n "${MTCP_PRELOAD_LOG:-}" ]] && environment+=(MTCP_LOG="$MTCP_PRELOAD_LOG")
            [[ -n "${MTCP_PRELOAD_STATS:-}" ]] && environment+=(MTCP_STATS="$MTCP_PRELOAD_STATS.$name")
            [[ -n "${MTCP_PRELOAD_CORES:-}" ]] && environment+=(MTCP_CORES="$MTCP_PRELOAD_CORES")
            [[ -n "${MTCP_PRELOAD_BUSY_POLL:-}" ]] && environment+=(MTCP_BUSY_POLL="$MTCP_PRELOAD_BUSY_POLL")
            ns="$S_NS"
            ;;
        kernel)
            environment=(PEER_ADDR="$K_PEER" STACK_ADDR="$K_ADDR" PEER_ADDR6="$K_PEER6" STACK_ADDR6="$K_ADDR6")
            ns="$K_NS"
            ;;
        plain)
            environment=(PEER_ADDR="$S_PEER" STACK_ADDR="$S_ADDR" PEER_ADDR6="$S_PEER6" STACK_ADDR6="$S_ADDR6")
            ns="$S_NS"
            ;;
    esac
    timeout -k 2 "$CASE_TIMEOUT" ip netns exec "$ns" env PEER_PORT="$PEER_PORT" PEER6_PORT="$PEER6_PORT" \
        "${environment[@]}" "$@" \
        "$WORK/$program" "$name" >"$out" 2>&1 </dev/null || status=$?
    end_leftovers "$ns"
    if ((status == 0)) && grep -qx "ok $name" "$out"; then
        PASSED=$((PASSED + 1))
        echo "PASS $label"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$label")
        echo "FAIL $label (exit status $status$( ((status == 124)) && echo ": timed out after ${CASE_TIMEOUT}s"))"
        sed 's/^/    /' "$out" | tail -n 40
    fi
}

# verdict LABEL OK DETAIL-FILE: counts and prints one result.
verdict() {
    if (($2)); then
        PASSED=$((PASSED + 1))
        echo "PASS $1"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$1")
        echo "FAIL $1"
        [[ -f "$3" ]] && sed 's/^/    /' "$3" | tail -n 40
    fi
}

# Case 9: with MTCP_ENABLE=0 the program's output and status are those without the library
# (no kernel address: connecting to the peer fails); with the library on they differ.
passthrough() {
    local out="$WORK/passthrough" status
    run_passthrough() {
        timeout -k 2 "$CASE_TIMEOUT" ip netns exec "$S_NS" env PEER_PORT="$PEER_PORT" PEER_ADDR="$S_PEER" \
            STACK_ADDR="$S_ADDR" "$@" "$WORK/passthrough" passthrough 2>&1 </dev/null || echo "exit status $?"
    }
    run_passthrough >"$out.plain"
    run_passthrough LD_PRELOAD="$LIB" MTCP_IFACE="$S_IF" MTCP_ADDR="$S_ADDR/24" MTCP_ENABLE=0 >"$out.disabled"
    run_passthrough LD_PRELOAD="$LIB" MTCP_IFACE="$S_IF" MTCP_ADDR="$S_ADDR/24" >"$out.enabled"
    diff -u "$out.plain" "$out.disabled" >"$out.diff" 2>&1 && status=1 || status=0
    grep -qx "ok passthrough" "$out.plain" || status=0
    verdict "passthrough (MTCP_ENABLE=0 is the same as no library)" "$status" "$out.diff"
    cmp -s "$out.plain" "$out.enabled" && status=0 || status=1
    grep -q "blocking connect to the peer: ok" "$out.enabled" || status=0
    verdict "passthrough (the library on connects where the kernel cannot)" "$status" "$out.enabled"
}

# The library honours MTCP_IMPAIR (one way to open a link for every host): a 1 MiB sendfile to
# the kernel's TCP through 3% loss, duplication and reordering in both directions arrives
# intact, and the library's counters show the faults were applied.
impaired() {
    local stats="$WORK/impaired-stats" counters
    run stack recvflags sendfile MTCP_IMPAIR="loss=0.03,dup=0.03,reorder=0.03,seed=11" MTCP_STATS="$stats"
    counters="$(cat "$stats".* 2>/dev/null || true)"
    local ok=0
    [[ "$counters" =~ impair_tx_dropped=([1-9][0-9]*) && "$counters" =~ impair_rx_dropped=([1-9][0-9]*) ]] && ok=1
    echo "$counters" >"$stats.shown"
    verdict "impaired (MTCP_IMPAIR applies faults under the library, both directions)" "$ok" "$stats.shown"
}

# IPv6 cases (dualstack6.c): the kernel's run, then the library's with both addresses and its
# counters; the "| " lines of the two runs must be the same, and the library's counters must
# show the connections the case makes (V6_COUNTERS: KEY=N, every one exact; a case that makes
# none may also leave no counters, its sockets having stayed with the kernel).
declare -A V6_COUNTERS=(
    [v6-dual-listener]="passive_opens=2 active_opens=2"
    [v6-only-listener]="passive_opens=1 active_opens=2"
    [v6-beside-v4]="passive_opens=2 active_opens=2"
    [v6-beside-v4-alone]="passive_opens=4 active_opens=4"
    [v6-only-option]="passive_opens=0 active_opens=1"
    [v6-client]="passive_opens=0 active_opens=2"
    [v6-foreign-bind]="passive_opens=0 active_opens=0"
)
# shown_alike NAME FAILED-BEFORE: compares the "| " lines of case NAME's kernel and stack runs
# and counts the verdict; returns 1 (the verdict left out) when one of the runs failed.
shown_alike() {
    local name="$1" failed_before="$2" ok=1
    grep '^| ' "$WORK/$name.kernel.log" >"$WORK/$name.kernel.shown" || true
    grep '^| ' "$WORK/$name.stack.log" >"$WORK/$name.stack.shown" || true
    diff -u --label kernel --label stack "$WORK/$name.kernel.shown" "$WORK/$name.stack.shown" \
        >"$WORK/$name.diff" 2>&1 || ok=0
    if ((FAILED != failed_before)); then
        # A run failed (shown above): what the library showed differently, for the record.
        ((ok)) || { echo "    kernel and library differ:" && sed 's/^/    /' "$WORK/$name.diff"; }
        return 1
    fi
    verdict "$name (the library shows what the kernel shows: $(wc -l <"$WORK/$name.kernel.shown") lines)" \
        "$ok" "$WORK/$name.diff"
    return 0
}

run_v6() {
    local program="$1" name="$2" stats="$WORK/v6stats.$2" failed_before="$FAILED" ok key want got counters
    run kernel "$program" "$name"
    rm -f "$stats".*
    run stack "$program" "$name" MTCP_ADDR="$S_ADDR/24,$S_ADDR6/64" MTCP_STATS="$stats"
    shown_alike "$name" "$failed_before" || return 0
    counters="$(cat "$stats".* 2>/dev/null || true)"
    ok=1
    for key in ${V6_COUNTERS[$name]}; do
        want="${key#*=}" key="${key%%=*}"
        got="$(sed -n "s/.* $key=\([0-9][0-9]*\).*/\1/p" <<<"$counters" | head -n 1)"
        [[ -z "$counters" && "$want" == 0 ]] && continue
        [[ "$got" == "$want" ]] || ok=0
    done
    {
        echo "want ${V6_COUNTERS[$name]}"
        echo "got ${counters:-(no counters: no stack ran)}"
    } >"$stats.shown"
    local carried
    carried="$(sed -n 's/.* \(passive_opens=[0-9]*\) \(active_opens=[0-9]*\).*/\1 \2/p' <<<"$counters" | head -n 1)"
    verdict "$name (stack counters: ${carried:-no stack ran}; want ${V6_COUNTERS[$name]})" "$ok" "$stats.shown"
}

# Cases checked call by call against the kernel (hostile.c): the kernel's run, then the
# library's; their "| " lines (each call's result and errno) must be the same.
run_compare() {
    local program="$1" name="$2" failed_before="$FAILED"
    run kernel "$program" "$name"
    run stack "$program" "$name"
    shown_alike "$name" "$failed_before" || true
}

# Cases: PROGRAM CASE MODES (both = stack and kernel; v6 and compare as above). fork-write is
# the library's own rule: with the kernel, a child's write to an inherited connection goes through.
CASES=(
    "fds fd-numbers both"
    "fds fd-fstat both"
    "fds fd-select both"
    "epoll epoll-level both"
    "epoll epoll-edge both"
    "epoll epoll-oneshot both"
    "epoll epoll-fair both"
    "epoll epoll-hup both"
    "epoll epoll-timeout both"
    "epoll epoll-ctl both"
    "pollselect poll-mix both"
    "pollselect poll-hup both"
    "pollselect poll-timeout both"
    "pollselect select-mix both"
    "blocking block-io both"
    "blocking block-accept both"
    "blocking block-rcvtimeo both"
    "blocking block-eintr both"
    "nbconnect nb-connect both"
    "nbconnect nb-refused both"
    "dup dup both"
    "dup dup2-over both"
    "fork fork-close both"
    "fork fork-write stack"
    "fork fork-listener both"
    "dualstack v6-accepts-v4 both"
    "dualstack v6-connects-mapped both"
    "dualstack v6-only both"
    "dualstack v6-options both"
    "dualstack6 v6-dual-listener v6"
    "dualstack6 v6-only-listener v6"
    "dualstack6 v6-beside-v4 v6"
    "dualstack6 v6-beside-v4-alone v6"
    "dualstack6 v6-only-option v6"
    "dualstack6 v6-client v6"
    "dualstack6 v6-foreign-bind v6"
    "fallback fallback-kinds both"
    "fallback listen-any both"
    "fallback listen-stack-only stack MTCP_KERNEL_LISTEN=0"
    "passthrough passthrough special"
    "recvflags recv-dontwait both"
    "recvflags recv-waitall both"
    "recvflags recv-peek both"
    "recvflags iovec both"
    "recvflags sendfile both"
    "recvflags epipe both"
    "impaired impaired special"
    "hostile hostile-sockets compare"
    "hostile hostile-data compare"
    "hostile hostile-wait compare"
    "hostile hostile-threads compare"
)

selected() {
    local name="$1" wanted
    ((${#SELECTION[@]} == 0)) && return 0
    for wanted in "${SELECTION[@]}"; do [[ "$wanted" == "$name" ]] && return 0; done
    return 1
}
SELECTION=("$@")

START=$SECONDS
for entry in "${CASES[@]}"; do
    read -r program name modes extra <<<"$entry"
    selected "$name" || continue
    if [[ "$modes" == special ]]; then
        if [[ -n "${MTCP_PRELOAD_RUNTIME:-}" && "$name" == passthrough ]]; then
            echo "skip passthrough: it loads the library without the sanitizer runtime"
            continue
        fi
        "$name"
        continue
    fi
    if [[ "$modes" == v6 ]]; then
        run_v6 "$program" "$name"
        continue
    fi
    if [[ "$modes" == compare ]]; then
        # A sanitizer runtime's own interceptors of getsockname and poll (ASan's and TSan's), in
        # front of the library, read the kernel-half pointers these cases pass and crash before
        # the library is called.
        if [[ -n "${MTCP_PRELOAD_RUNTIME:-}" && ("$name" == hostile-sockets || "$name" == hostile-wait) ]]; then
            echo "skip $name: the sanitizer runtime's interceptors dereference its hostile pointers first"
            continue
        fi
        run_compare "$program" "$name"
        continue
    fi
    # shellcheck disable=SC2086 # extra is a list of VAR=VALUE words
    if [[ "$modes" == both || "$modes" == kernel ]]; then run kernel "$program" "$name" $extra; fi
    # shellcheck disable=SC2086
    if [[ "$modes" == both || "$modes" == stack ]]; then run stack "$program" "$name" $extra; fi
done

log "$((SECONDS - START)) s"
if ((FAILED > 0)); then log "failed: ${FAILURES[*]}"; fi
echo "test-preload: $PASSED passed, $FAILED failed"
((FAILED == 0))
