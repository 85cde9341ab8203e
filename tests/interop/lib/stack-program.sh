# shellcheck shell=bash
# One of our programs (mtcp-echo, mtcp-httpd …) on the stack side of a test, for scripts that
# set WORK (a scratch directory) and source netns.sh first.
#
#   start_stack LOGNAME PROGRAM ARGS...   runs it in $STACK_NS (root namespace when empty),
#                                         output in $WORK/LOGNAME.log; returns once it serves
#   stop_stack LOGNAME                    SIGTERM, wait, and show its closing counters
#   peer CMD...                           runs CMD in the peer namespace, bounded in time
#
# STACK_START_TENTHS bounds the wait for "listening on"/"serving" (tenths of a second).
SERVER_PID=""

start_stack() {
    local name="$1"
    shift
    # Started directly (not through a shell function), so that $! is the program itself.
    if [[ -n "${STACK_NS:-}" ]]; then
        ip netns exec "$STACK_NS" "$@" >"$WORK/$name.log" 2>&1 &
    else
        "$@" >"$WORK/$name.log" 2>&1 &
    fi
    SERVER_PID=$!
    netns_track_pid "$SERVER_PID"
    local i
    for ((i = 0; i < ${STACK_START_TENTHS:-100}; i++)); do
        grep -q "listening on\|serving" "$WORK/$name.log" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/    /' "$WORK/$name.log" >&2
    return 1
}

# Call it outside pipelines: `wait` only works in the shell that started the program.
stop_stack() {
    local name="$1"
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    sed 's/^/    /' "$WORK/$name.log"
}

peer() { timeout "${PEER_TIMEOUT:-300}" ip netns exec "$PEER_NS" "$@"; }
