#!/usr/bin/env bash
# A server process killed with SIGKILL (issue 15, item 5), the kernel as the reference
# (COMPAT_MODE=kernel runs the same script without the library):
#   worker killed: nginx with 2 workers, 16 keep-alive connections held by the peer
#     (compat-tests/tools/reset_probe.py); one worker gets SIGKILL. On the next request each
#     connection is either answered (the other worker's) or reset within 1 s (the dead worker's:
#     the primary instance sweeps dead processes every 50 ms, drops their flows and listener
#     memberships, and answers their segments with RST). New connections all complete at once
#     (no SYN is steered to the dead worker).
#   server killed and restarted: every nginx process gets SIGKILL and nginx starts again at once:
#     it binds its port on the first try, serves, and the connections held from before are reset
#     within 1 s of their next request.
# The kernel closes a dead process's sockets with FIN, so on the kernel a dead connection reads
# EOF where the stack's (whose owner can send nothing) is reset; both count as gone.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cfault
N="$WORK/nginx"
nginx_site "$N" 2
# One process per connection would be a lot of waiting for the master: keep-alive connections
# last longer than the test.
sed -i 's/^http {/http {\n    keepalive_timeout 300s;\n    keepalive_requests 100000;/' "$N/nginx.conf"
PROBE="$COMPAT_DIR/tools/reset_probe.py"
HELD=16

# start_probe NAME  holds HELD keep-alive connections to nginx from the peer; PROBE_PID, and
# $WORK/NAME.{ready,go,out} for the stages.
start_probe() {
    local name="$1"
    rm -f "$WORK/$name".{ready,go,out}
    spawn_in_peer "$WORK/$name.out" 90 python3 "$PROBE" --proto http --host "$STACK_ADDR" --port 80 \
        --connections "$HELD" --ready "$WORK/$name.ready" --go "$WORK/$name.go"
    PROBE_PID=$SPAWNED
    netns_wait_for 100 test -s "$WORK/$name.ready" || {
        cat "$WORK/$name.out" >&2
        return 1
    }
}

# probe_result NAME  lets the probe send, waits for it and sets ANSWERED RESET EOF SILENT GONE
# (gone_count) GONE_MS.
probe_result() {
    local name="$1" summary
    touch "$WORK/$name.go"
    wait "$PROBE_PID" || true
    cat "$WORK/$name.out" >&2
    summary="$(grep '^answered=' "$WORK/$name.out" || true)"
    [[ -n "$summary" ]] || return 1
    ANSWERED="$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' <<<"$summary")"
    RESET="$(sed -n 's/.*reset=\([0-9]*\).*/\1/p' <<<"$summary")"
    EOF="$(sed -n 's/.*eof=\([0-9]*\).*/\1/p' <<<"$summary")"
    SILENT="$(sed -n 's/.*silent=\([0-9]*\).*/\1/p' <<<"$summary")"
    GONE_MS="$(sed -n 's/.*max_gone_ms=\([0-9]*\).*/\1/p' <<<"$summary")"
    GONE="$(gone_count)"
    echo "held $HELD: answered $ANSWERED, gone $GONE (reset $RESET, eof $EOF), silent $SILENT; slowest ${GONE_MS} ms" >&2
}

# gone_count  the connections the peer saw end: reset on the stack (nobody can send a FIN for a
# dead process), reset or EOF on the kernel.
gone_count() {
    if [[ "$COMPAT_MODE" == kernel ]]; then echo $((RESET + EOF)); else
        ((EOF == 0)) || echo "a dead process's connection read EOF on the stack: who sent a FIN?" >&2
        echo "$RESET"
    fi
}

# split_verdict NAME  probe_result NAME, then: some connections answered (the live worker's),
# the others gone within 1 s of the request (the dead one's), none silent.
split_verdict() {
    probe_result "$1" || return 1
    ((ANSWERED > 0 && GONE > 0 && ANSWERED + GONE == HELD && SILENT == 0 && GONE_MS < 1000))
}

# fresh_connections COUNT  COUNT new connections, each answered with 200 and connected within
# 0.5 s (a SYN steered to a dead process would wait for the client's 1 s retransmission).
fresh_connections() {
    local count="$1" i line slow=0 bad=0
    for ((i = 0; i < count; i++)); do
        line="$(in_peer 10 curl -s -o /dev/null -w '%{http_code} %{time_connect}' --max-time 5 \
            "http://$STACK_ADDR/index.html" || true)"
        [[ "$line" == "200 "* ]] || bad=$((bad + 1))
        awk -v t="${line#* }" 'BEGIN { exit !(t + 0 < 0.5) }' || slow=$((slow + 1))
    done
    echo "fresh connections: $count made, $bad not answered with 200, $slow slower than 0.5 s to connect" >&2
    ((bad == 0 && slow == 0))
}

# nginx_pids MASTER  the master and its workers.
nginx_pids() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }

worker_killed() {
    nginx_up "$N" "$WORK/nginx-1.log" || return 1
    local master
    master="$(cat "$N/nginx.pid")"
    netns_wait_for 100 bash -c "[[ \$(pgrep -c -P $master) == 2 ]]" || return 1
    start_probe worker || return 1
    local victim
    victim="$(pgrep -P "$master" | head -n 1)"
    echo "killing worker $victim of master $master" >&2
    kill -KILL "$victim"
    # The sweep runs every 50 ms; nginx's master starts a new worker.
    sleep 0.3
    split_verdict worker || return 1
    fresh_connections 40
}
check "one nginx worker of 2 SIGKILLed: its keep-alive connections reset within 1 s of their next request, the other's answered, new connections at once" worker_killed

# The master is the first process on the interface, so its instance is the primary (it answers
# segments nobody owns and sweeps dead processes): with it gone, a worker must take the role.
primary_killed() {
    local master
    master="$(cat "$N/nginx.pid" 2>/dev/null || true)"
    [[ -n "$master" ]] || return 1
    netns_wait_for 100 bash -c "[[ \$(pgrep -c -P $master) == 2 ]]" || return 1
    WORKERS="$(pgrep -P "$master" | tr '\n' ' ')"
    start_probe primary || return 1
    echo "killing master $master (workers $WORKERS stay)" >&2
    kill -KILL "$master"
    sleep 0.3
    fresh_connections 20 || return 1
    local victim="${WORKERS%% *}"
    echo "killing worker $victim" >&2
    kill -KILL "$victim"
    WORKERS="${WORKERS#* }"
    sleep 0.3
    split_verdict primary || return 1
    fresh_connections 20
}
check "nginx's master SIGKILLed, then a worker: the last worker serves and resets the dead worker's connections within 1 s" primary_killed

server_restarted() {
    [[ -n "${WORKERS// /}" ]] || return 1
    start_probe restart || return 1
    local pids="$WORKERS"
    echo "killing every nginx process: $pids" >&2
    # shellcheck disable=SC2086 # a list of pids
    kill -KILL $pids
    local pid
    for pid in $pids; do netns_wait_for 100 bash -c "! kill -0 $pid 2>/dev/null" || return 1; done
    rm -f "$N/nginx.pid"
    # nginx exits when it cannot bind: starting is binding on the first try.
    on_stack 30 nginx nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-2.log" 2>&1 || {
        cat "$WORK/nginx-2.log" "$N/error.log" >&2
        return 1
    }
    netns_wait_for 100 test -s "$N/nginx.pid" || return 1
    if grep -q 'bind() .* failed' "$N/error.log"; then
        grep 'bind()' "$N/error.log" >&2
        return 1
    fi
    fresh_connections 20 || return 1
    probe_result restart || return 1
    ((GONE == HELD && GONE_MS < 1000))
}
check "every nginx process SIGKILLed: nginx restarts and binds at once, the old connections reset within 1 s of their next request" server_restarted

stop_all() {
    local master
    master="$(cat "$N/nginx.pid" 2>/dev/null || true)"
    [[ -n "$master" ]] || return 0
    local pids
    pids="$(nginx_pids "$master")"
    kill -QUIT "$master" 2>/dev/null || true
    netns_wait_for 100 bash -c "! kill -0 $master 2>/dev/null" || {
        # shellcheck disable=SC2086 # a list of pids
        kill -KILL $pids 2>/dev/null || true
    }
}
stop_all
compat_dump_on_failure
compat_finish
