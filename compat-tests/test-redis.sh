#!/usr/bin/env bash
# Debian's redis-server on the stack, kernel clients (redis-cli, redis-benchmark, python) in the
# peer namespace:
#   PING; SET/GET of random 1 MiB values, byte-exact; MULTI/EXEC; pub/sub
#   redis-benchmark SET, GET, LPUSH, LRANGE_100 with -P 1 and -P 16: no errors
#   BGSAVE (forked child) while a redis-benchmark and ten persistent connections run: LASTSAVE
#   advances, the child closed the listeners it inherited, the parent still accepts, every
#   connection keeps working after the child exits, no rejected connections
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup crds
R="$WORK/redis"
mkdir -p "$R"
say "redis-server ($COMPAT_MODE) in $STACK_NS at $STACK_ADDR:6379; clients in $PEER_NS"
spawn_on_stack "$WORK/redis-server.log" redis \
    redis-server --port 6379 --save '' --appendonly no --protected-mode no --dir "$R"
rc() { in_peer 30 redis-cli -h "$STACK_ADDR" -p 6379 "$@"; }
info_field() { rc INFO "$1" | tr -d '\r' | sed -n "s/^$2:\(.*\)/\1/p"; }

check "redis-server starts, $STACK_ADDR:6379 accepts" wait_tcp_port "$PEER_NS" "$STACK_ADDR" 6379
REDIS="$(info_field server process_id || true)"
# The server's descriptors before a client connected (the one above has gone): listeners and
# its own (and the library's) files. The BGSAVE child must lack the listeners.
# Descriptor numbers are reused (the child's RDB file may get a listener's number): compare
# "number -> target" pairs.
fd_targets() {
    local fd
    for fd in "/proc/$1/fd"/*; do
        printf '%s->%s\n' "${fd##*/}" "$(readlink "$fd" 2>/dev/null)"
    done | sort
}
FDS_AT_START="$(fd_targets "${REDIS:-none}" || true)"

check "redis-cli PING answers PONG" test "$(rc PING)" = PONG

big_value() {
    local key="$1" value="$WORK/$1.value" got="$WORK/$1.got"
    head -c $((1 << 20)) /dev/urandom >"$value"
    [[ "$(rc -x SET "$key" <"$value")" == OK ]] || return 1
    [[ "$(rc STRLEN "$key")" == $((1 << 20)) ]] || return 1
    # redis-cli prints the raw bytes and a newline.
    rc GET "$key" >"$got" || return 1
    [[ "$(stat -c %s "$got")" == $(((1 << 20) + 1)) ]] || return 1
    truncate -s $((1 << 20)) "$got"
    same_file "$value" "$got"
}
check "SET then GET of a random 1 MiB value (redis-cli -x), byte-exact" big_value big1
check "a second 1 MiB value, byte-exact" big_value big2
again() { truncate -s 0 "$WORK/big1.got"; rc GET big1 >"$WORK/big1.got" && truncate -s $((1 << 20)) "$WORK/big1.got" && same_file "$WORK/big1.value" "$WORK/big1.got"; }
check "GET of the first value again, byte-exact" again

multi_exec() {
    local out
    out="$(printf 'DEL ctr\nMULTI\nINCR ctr\nINCRBY ctr 41\nGET ctr\nEXEC\nGET ctr\n' |
        rc | tr '\n' ' ')"
    echo "MULTI/EXEC printed: $out" >&2
    [[ "$out" =~ ^[01]\ OK\ QUEUED\ QUEUED\ QUEUED\ 1\ 42\ 42\ 42\ $ ]]
}
check "MULTI/EXEC runs the queued commands atomically" multi_exec

pubsub() {
    local message="compat-$RANDOM$RANDOM" out="$WORK/subscriber.out" subscriber
    spawn_in_peer "$out" 30 redis-cli -h "$STACK_ADDR" -p 6379 SUBSCRIBE compat-channel
    subscriber=$SPAWNED
    subscribed() { [[ "$(rc PUBSUB NUMSUB compat-channel | sed -n 2p)" == 1 ]]; }
    netns_wait_for 100 subscribed || return 1
    [[ "$(rc PUBLISH compat-channel "$message")" == 1 ]] || return 1
    netns_wait_for 100 grep -qx "$message" "$out"
    local status=$?
    stop_pid "$subscriber"
    cat "$out" >&2
    return "$status"
}
check "pub/sub: a subscribed redis-cli receives a PUBLISHed message" pubsub

benchmark() {
    local pipeline="$1" requests="$2" out="$WORK/benchmark-P$1.txt" errors_before errors_after test
    errors_before="$(info_field stats total_error_replies)"
    in_peer 120 redis-benchmark -h "$STACK_ADDR" -p 6379 -t set,get,lpush,lrange_100 \
        -n "$requests" -P "$pipeline" -q >"$out" 2>&1
    local status=$?
    tr '\r' '\n' <"$out" | grep -v '^$' | grep -v 'rps=' >&2
    ((status == 0)) || { echo "redis-benchmark exit status $status" >&2; return 1; }
    if grep -qi 'error' "$out"; then echo "redis-benchmark printed an error" >&2; return 1; fi
    local lines
    lines="$(tr '\r' '\n' <"$out")"
    for test in SET GET LPUSH 'LRANGE_100 (first 100 elements)'; do
        grep -q "^$test: [0-9.]* requests per second" <<<"$lines" ||
            { echo "no result for $test" >&2; return 1; }
    done
    errors_after="$(info_field stats total_error_replies)"
    echo "server's total_error_replies: $errors_before before, $errors_after after" >&2
    [[ -n "$errors_before" && "$errors_before" == "$errors_after" ]]
}
check "redis-benchmark SET GET LPUSH LRANGE_100, -P 1, -n 20000: completes, no errors" benchmark 1 20000
check "redis-benchmark SET GET LPUSH LRANGE_100, -P 16, -n 200000: completes, no errors" benchmark 16 200000

# --- BGSAVE while clients are connected. ---------------------------------------------------
# A slow child (rdb-key-save-delay, microseconds per key) so that it can be looked at.
rc CONFIG SET rdb-key-save-delay 200 >/dev/null || true
in_peer 120 redis-benchmark -h "$STACK_ADDR" -p 6379 -t set -n 20000 -r 10000 -q >/dev/null 2>&1 || true
say "keys before BGSAVE: $(rc DBSIZE || true)"
HOLD_READY="$WORK/hold.ready" PHASE="$WORK/hold.phase"
spawn_in_peer "$WORK/hold.log" 120 python3 "$COMPAT_DIR/tools/redis_hold.py" --host "$STACK_ADDR" \
    --connections 10 --ready "$HOLD_READY" --phase-file "$PHASE" --after 100 --deadline 100
HOLD=$SPAWNED
spawn_in_peer "$WORK/benchmark-loop.txt" 120 redis-benchmark -h "$STACK_ADDR" -p 6379 -t set,get \
    -c 20 -l -q
LOOP=$SPAWNED
check "ten persistent connections open" netns_wait_for 100 test -s "$HOLD_READY"
BEFORE="$(rc LASTSAVE || echo 0)"
# LASTSAVE has a resolution of a second.
netns_wait_for 30 bash -c "((\$(date +%s) > $BEFORE))" || true
check "BGSAVE starts while redis-benchmark and the connections run" \
    bash -c "[[ '$(rc BGSAVE)' == 'Background saving started' ]]"
CHILD=""
find_child() { CHILD="$(pgrep -P "${REDIS:-1}" -x redis-server | head -n 1)"; [[ -n "$CHILD" ]]; }
check "the BGSAVE child runs" netns_wait_for 50 find_child
child_closed_listeners() {
    local child_fds gone
    child_fds="$(fd_targets "$CHILD")"
    echo "server's descriptors at start:" $FDS_AT_START >&2
    echo "the BGSAVE child's descriptors:" $child_fds >&2
    [[ -n "$child_fds" ]] || return 1
    gone="$(comm -23 <(echo "$FDS_AT_START") <(echo "$child_fds"))"
    echo "of the server's first descriptors, the child closed:" $gone >&2
    # Listeners on 0.0.0.0 and :: (redis's default bind '* -::*').
    (($(echo "$gone" | grep -c .) >= 2))
}
# The child closes them first thing, but fork itself may take a while in the child (on the dpdk
# backend it makes its own port there, tens of milliseconds): look for up to 5 s.
child_closes_listeners() {
    netns_wait_for 50 child_closed_listeners || true
    child_closed_listeners
}
check "the child closed the listeners it inherited (two of the server's first descriptors)" \
    child_closes_listeners
check "while the child runs, the server accepts a new connection (PING)" \
    bash -c "[[ \"\$(timeout 10 ip netns exec '$PEER_NS' redis-cli -h '$STACK_ADDR' PING)\" == PONG ]] && kill -0 '$CHILD'"
saved() {
    [[ "$(info_field persistence rdb_bgsave_in_progress)" == 0 ]] && ! kill -0 "$CHILD" 2>/dev/null
}
check "BGSAVE finishes (child exits)" netns_wait_for 600 saved
check "rdb_last_bgsave_status is ok" test "$(info_field persistence rdb_last_bgsave_status)" = ok
AFTER="$(rc LASTSAVE || echo 0)"
check "LASTSAVE advanced ($BEFORE -> $AFTER)" test "$AFTER" -gt "$BEFORE"
touch "$PHASE"
hold_ok() { wait "$HOLD"; local status=$?; cat "$WORK/hold.log" >&2; return "$status"; }
check "the ten connections kept working after the child exited (100 more INCRs each)" hold_ok
loop_ok() {
    kill -0 "$LOOP" 2>/dev/null || { echo "redis-benchmark ended by itself" >&2; return 1; }
    stop_pid "$LOOP"
    tr '\r' '\n' <"$WORK/benchmark-loop.txt" | tail -n 3 >&2
    ! grep -qi error "$WORK/benchmark-loop.txt"
}
check "the looping redis-benchmark ran through the BGSAVE without an error" loop_ok
check "INFO: rejected_connections is 0" test "$(info_field stats rejected_connections)" = 0
settled() {
    netns_wait_for 50 bash -c "[[ \$(timeout 10 ip netns exec '$PEER_NS' redis-cli -h '$STACK_ADDR' INFO clients | tr -d '\r' | grep '^connected_clients:') == connected_clients:1 ]]"
    local status=$?
    echo "$(info_field clients connected_clients) clients connected" >&2
    return "$status"
}
check "every client's close reached the server (connected_clients back to 1)" settled
check "redis-server is still running" kill -0 "$REDIS"
compat_finish
