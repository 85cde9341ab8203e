#!/usr/bin/env bash
# Debian's memcached with 4 worker threads (memcached -t 4 -c 1024, TCP only) on the stack with
# MTCP_CORES=2, and first the same memcached on the kernel (namespaces of its own) as the
# reference; tools/memcached-load.py (python3) in the peer namespace drives each:
#   16 threads, one connection each, 300 set + get pairs per thread (distinct keys, random values
#   of 1 B to 4 KiB): every get returns exactly the value and flags set, and a multi-get of all
#   the keys afterwards too; the same with a fresh connection every 50 commands (208
#   connections); memcached's own stats: 4 threads, no get misses, no rejected connections, no
#   listen_disabled, every connection counted; SIGTERM ends it with exit status 0.
#   On the stack, the library's counters (MTCP_STATS, written at exit): a passive open for every
#   connection made, instances=2 and instanceK_passive_opens > 0 for every instance (both
#   instances of MTCP_CORES=2 held connections).
# COMPAT_MODE=kernel runs the stack half on the kernel as well, without the library's counters.
# COMPAT_BACKEND=dpdk: the preload library runs one instance per process there (instances=1).
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

PORT=11211
MEMCACHED_ARGS=(-t 4 -p "$PORT" -U 0 -u root -l 0.0.0.0 -c 1024)
THREADS=16 PAIRS=300

# load NAME TAG OPS_PER_CONNECTION  memcached-load.py from the peer namespace against STACK_ADDR;
# its output in $WORK/NAME-TAG.load.
load() {
    local name="$1" tag="$2" per="$3" out="$WORK/$1-$2.load" status=0
    in_peer 70 python3 "$COMPAT_DIR/tools/memcached-load.py" --host "$STACK_ADDR" --port "$PORT" \
        --threads "$THREADS" --pairs "$PAIRS" --ops-per-connection "$per" --tag "$name-$tag" \
        --deadline 60 --timeout 5 >"$out" 2>&1 || status=$?
    cat "$out" >&2
    echo "memcached-load exit status $status" >&2
    ((status == 0)) && grep -q ' failures=0$' "$out"
}

# connections NAME  connections the loads of run NAME made.
connections() {
    local file sum=0 n
    for file in "$WORK/$1"-*.load; do
        n="$(sed -n 's/^memcached-load: .* connections=\([0-9]*\) .*/\1/p' "$file")"
        sum=$((sum + ${n:-0}))
    done
    echo "$sum"
}

# server_stats NAME  memcached's `stats` of run NAME: 4 threads, no misses or rejected
# connections, listening throughout, at least every connection the loads made.
server_stats() {
    local out="$WORK/$1.stats" made
    in_peer 20 python3 "$COMPAT_DIR/tools/memcached-load.py" --host "$STACK_ADDR" --port "$PORT" \
        --stats >"$out" || return 1
    made="$(connections "$1")"
    grep -E '^(threads|curr_connections|total_connections|rejected_connections|listen_disabled_num|cmd_get|cmd_set|get_misses)=' "$out" >&2
    echo "connections made by the loads: $made" >&2
    [[ "$(stat_field "$out" threads)" == 4 &&
        "$(stat_field "$out" get_misses)" == 0 &&
        "$(stat_field "$out" rejected_connections)" == 0 &&
        "$(stat_field "$out" listen_disabled_num)" == 0 &&
        "$(stat_field "$out" cmd_set)" == $((2 * THREADS * PAIRS)) ]] || return 1
    (($(stat_field "$out" total_connections) >= made && made > 0))
}

# stop_memcached PID  SIGTERM to memcached's `timeout` (which passes it on); true when it exits
# with status 0 within 10 s.
stop_memcached() {
    local pid="$1" i status=0
    kill -TERM "$pid" || return 1
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "memcached still runs 10 s after SIGTERM" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 1
    fi
    wait "$pid" || status=$?
    echo "memcached exit status $status" >&2
    ((status == 0))
}

# memcached_up  waits (at most 15 s) until STACK_ADDR:PORT accepts a connection from PEER_NS.
memcached_up() {
    local end=$((SECONDS + 15))
    while ((SECONDS < end)); do
        timeout 2 ip netns exec "$PEER_NS" bash -c "exec 3<>/dev/tcp/$STACK_ADDR/$PORT" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# memcached_run NAME  starts memcached in STACK_NS (NAME kernel: without the library; else through
# stack_spawn, so with it in preload mode), runs the loads and stops it.
memcached_run() {
    local name="$1" server where
    if [[ "$name" == kernel ]]; then
        where="the kernel"
        timeout -k 5 120 ip netns exec "$STACK_NS" memcached "${MEMCACHED_ARGS[@]}" \
            >"$WORK/$name-memcached.log" 2>&1 &
        SPAWNED=$!
        netns_track_pid "$SPAWNED"
    else
        where="the stack"
        [[ "$COMPAT_MODE" == kernel ]] && where="the kernel (COMPAT_MODE=kernel)"
        stack_spawn "$WORK/$name-memcached.log" "$STACK_NS" "$STACK_IF" "$STACK_ADDR" 120 memcached \
            memcached "${MEMCACHED_ARGS[@]}"
    fi
    server=$SPAWNED
    say "memcached ${MEMCACHED_ARGS[*]} on $where in $STACK_NS at $STACK_ADDR:$PORT; clients in $PEER_NS"
    check "memcached -t 4 on $where starts, $STACK_ADDR:$PORT accepts" \
        memcached_up
    check "$THREADS client threads x $PAIRS set+get, a connection each, on $where: 0 failures" \
        load "$name" persistent 0
    check "$THREADS client threads x $PAIRS set+get, a fresh connection every 50 commands, on $where: 0 failures" \
        load "$name" reconnect 50
    say "$name: $(grep -h '^memcached-load: tag=' "$WORK/$name"-*.load | sed 's/ tag=/ /' |
        cut -d' ' -f2,4-7,11 | tr '\n' ';')"
    check "memcached's stats on $where: threads 4, no misses, none rejected, every connection counted" \
        server_stats "$name"
    check "SIGTERM: memcached on $where exits with status 0" stop_memcached "$server"
}

# --- The reference: memcached on the kernel. ------------------------------------------------
netns_setup --stack-ns cmemk
netns_stack_kernel_address
memcached_run kernel

# --- memcached on the stack, MTCP_CORES=2. --------------------------------------------------
compat_setup cmem
STACK_EXTRA_ENV=(MTCP_CORES=2)
# On dpdk the preload library runs one instance per process (docs/PRELOAD.md): MTCP_CORES=2
# must still serve everything, on one instance, with the reason logged.
WANT_INSTANCES=2
[[ "$COMPAT_BACKEND" == dpdk ]] && WANT_INSTANCES=1
memcached_run stack

if [[ "$COMPAT_MODE" == preload ]]; then
    STATS=""
    find_stats() {
        local files=("$WORK"/stats/memcached.*)
        [[ -f "${files[0]}" ]] || return 1
        STATS="${files[0]}"
        echo "library counters ($(basename "$STATS"), ${#files[@]} file(s)): $(cat "$STATS")" >&2
        ((${#files[@]} == 1))
    }
    check "the library wrote memcached's counters (MTCP_STATS) at exit, one process" find_stats
    if [[ -n "$STATS" ]]; then
        say "library counters: $(tr ' ' '\n' <"$STATS" |
            grep -E '^(passive_opens|active_opens|instances|instance[0-9]+_passive_opens)=' | tr '\n' ' ')"
    fi
    opens_counted() {
        local opens made
        opens="$(stat_field "$STATS" passive_opens)"
        made="$(connections stack)"
        echo "passive_opens=${opens:-missing}; connections made by the loads: $made" >&2
        [[ -n "$opens" ]] && ((opens >= made && made > 0))
    }
    check "the stack accepted every connection (passive_opens >= the loads' connections)" opens_counted
    # Both instances of MTCP_CORES=2 held connections: instances=2, instanceK_passive_opens > 0.
    per_instance() {
        local instances k value bad=0
        instances="$(stat_field "$STATS" instances)"
        echo "instances=${instances:-missing} (want $WANT_INSTANCES)"
        [[ "$instances" == "$WANT_INSTANCES" ]] || bad=1
        [[ "$instances" =~ ^[0-9]+$ ]] || instances=$WANT_INSTANCES
        for ((k = 0; k < instances; k++)); do
            value="$(stat_field "$STATS" "instance${k}_passive_opens")"
            echo "instance${k}_passive_opens=${value:-missing} (want > 0)"
            [[ "$value" =~ ^[0-9]+$ ]] && ((value > 0)) || bad=1
        done
        ((bad == 0))
    }
    say "per-instance check: $(per_instance | tr '\n' ';' || true)"
    check "MTCP_CORES=2: instances=$WANT_INSTANCES and every instanceK_passive_opens > 0 (every instance held connections)" \
        per_instance
fi
compat_finish
