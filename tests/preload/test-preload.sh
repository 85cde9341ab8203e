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
netns_setup --stack-ns plk >/dev/null 2>&1
netns_stack_kernel_address
K_NS="$STACK_NS" K_ADDR="$STACK_ADDR" K_PEER_NS="$PEER_NS" K_PEER="$PEER_ADDR"

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
            environment=(PEER_ADDR="$S_PEER" STACK_ADDR="$S_ADDR"
                LD_PRELOAD="${MTCP_PRELOAD_RUNTIME:+$MTCP_PRELOAD_RUNTIME }$LIB" MTCP_IFACE="$S_IF"
                MTCP_ADDR="$S_ADDR/24")
            [[ -n "${MTCP_PRELOAD_LOG:-}" ]] && environment+=(MTCP_LOG="$MTCP_PRELOAD_LOG")
            [[ -n "${MTCP_PRELOAD_STATS:-}" ]] && environment+=(MTCP_STATS="$MTCP_PRELOAD_STATS.$name")
            [[ -n "${MTCP_PRELOAD_CORES:-}" ]] && environment+=(MTCP_CORES="$MTCP_PRELOAD_CORES")
            [[ -n "${MTCP_PRELOAD_BUSY_POLL:-}" ]] && environment+=(MTCP_BUSY_POLL="$MTCP_PRELOAD_BUSY_POLL")
            ns="$S_NS"
            ;;
        kernel) environment=(PEER_ADDR="$K_PEER" STACK_ADDR="$K_ADDR") ns="$K_NS" ;;
        plain) environment=(PEER_ADDR="$S_PEER" STACK_ADDR="$S_ADDR") ns="$S_NS" ;;
    esac
    timeout -k 2 "$CASE_TIMEOUT" ip netns exec "$ns" env PEER_PORT="$PEER_PORT" "${environment[@]}" "$@" \
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

# Cases: PROGRAM CASE MODES (both = stack and kernel). fork-write is the library's own rule:
# with the kernel, a child's write to an inherited connection goes through.
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
    # shellcheck disable=SC2086 # extra is a list of VAR=VALUE words
    if [[ "$modes" == both || "$modes" == kernel ]]; then run kernel "$program" "$name" $extra; fi
    # shellcheck disable=SC2086
    if [[ "$modes" == both || "$modes" == stack ]]; then run stack "$program" "$name" $extra; fi
done

log "$((SECONDS - START)) s"
if ((FAILED > 0)); then log "failed: ${FAILURES[*]}"; fi
echo "test-preload: $PASSED passed, $FAILED failed"
((FAILED == 0))
