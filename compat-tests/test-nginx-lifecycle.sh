#!/usr/bin/env bash
# nginx's process lifecycle on the stack, each check with the kernel as the reference
# (COMPAT_MODE=kernel runs the same script without the library):
# nginx runs in the foreground (daemon off, as under a supervisor or `mtcp-run -- nginx -g
# 'daemon off;'`): its master then runs a stack of its own, which is what raced.
#   startup: LIFECYCLE_STARTS (default 100, the figure issue 11 asks for) fresh starts of nginx with
#     2 workers, each with a request 1 ms after the pid file appears: every one is answered.
#     (Before flow steering the master's stack completed the handshake and never accepted.)
#   graceful stop: a 4 MB download at limit_rate 1m, kill -QUIT of the master after 1 s: the
#     download completes byte-exact (before, another process reset it after the worker closed
#     its listener).
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup clife
N="$WORK/nginx"
nginx_site "$N" 2

# start_nginx LOG  nginx in the foreground (daemon off) in the background of this script; waits
# for its pid file (not for the port: the first request is the test).
start_nginx() {
    rm -f "$N/nginx.pid"
    stack_spawn "$1" "$STACK_NS" "$STACK_IF" "$STACK_ADDR" 120 nginx \
        nginx -c "$N/nginx.conf" -p "$N" -g 'daemon off;' || return 1
    local k
    for ((k = 0; k < 5000; k++)); do
        [[ -s "$N/nginx.pid" ]] && return 0
        sleep 0.001
    done
    return 1
}

# stop_nginx  QUIT the master of the pid file and wait (bounded) until it is gone.
stop_nginx() {
    local master
    master="$(cat "$N/nginx.pid" 2>/dev/null || true)"
    [[ -n "$master" ]] || return 0
    kill -QUIT "$master" 2>/dev/null || true
    netns_wait_for 100 bash -c "! kill -0 $master 2>/dev/null" || kill -KILL "$master" 2>/dev/null || true
}

STARTS="${LIFECYCLE_STARTS:-100}"
startup_race() {
    local i code answered=0
    for ((i = 1; i <= STARTS; i++)); do
        start_nginx "$WORK/start-$i.log" || return 1
        sleep 0.001
        code="$(in_peer 10 curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$STACK_ADDR/index.html" || true)"
        echo "start $i: HTTP ${code:-none}" >&2
        [[ "$code" == 200 ]] && answered=$((answered + 1))
        stop_nginx
    done
    echo "answered $answered of $STARTS" >&2
    ((answered == STARTS))
}
check "$STARTS fresh nginx starts, a request 1 ms after the pid file each: all answered" startup_race

graceful_stop() {
    start_nginx "$WORK/start-quit.log" && wait_tcp_port "$PEER_NS" "$STACK_ADDR" 80 || return 1
    local master
    master="$(cat "$N/nginx.pid")"
    netns_track_pid "$master"
    spawn_in_peer "$WORK/slow.log" 30 curl -sS --fail --max-time 25 -o "$WORK/slow.bin" \
        "http://$STACK_ADDR/slow/4m.bin"
    local download=$SPAWNED
    sleep 1
    kill -QUIT "$master"
    wait "$download" || {
        cat "$WORK/slow.log" >&2
        echo "got $(stat -c %s "$WORK/slow.bin" 2>/dev/null || echo 0) bytes" >&2
        return 1
    }
    netns_wait_for 100 bash -c "! kill -0 $master 2>/dev/null" || return 1
    same_file "$N/www/slow/4m.bin" "$WORK/slow.bin"
}
check "kill -QUIT during a 4 MB download at limit_rate 1m: the download completes byte-exact" graceful_stop
compat_dump_on_failure
compat_finish
