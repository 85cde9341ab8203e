#!/usr/bin/env bash
# Debian's nginx on the stack: a master that daemonizes and one worker per core (as Debian
# ships it, with sendfile and tcp_nopush), serving kernel clients in the peer namespace:
#   curl   small files and 10 MiB, byte-exact (SHA-256), also several on one connection
#   wrk    10 s, 100 connections, keep-alive and again with 'Connection: close': no socket
#          errors, no non-2xx responses
#   loopback  curl 127.0.0.1 inside the stack's namespace reaches the same nginx (a listener on
#          0.0.0.0 accepts on kernel interfaces too)
#   and nginx logs no alert, no crashed worker, and stops on 'nginx -s quit'.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cngx
N="$WORK/nginx"
nginx_config "$N" 80
make_www "$N/www"
say "nginx -c $N/nginx.conf ($COMPAT_MODE) in $STACK_NS at $STACK_ADDR:80; clients in $PEER_NS"

nginx_start() {
    on_stack 30 nginx nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-start.log" 2>&1 &&
        netns_wait_for 100 test -s "$N/nginx.pid" &&
        wait_tcp_port "$PEER_NS" "$STACK_ADDR" 80
}
check "nginx starts and daemonizes, $STACK_ADDR:80 accepts" nginx_start
MASTER="$(cat "$N/nginx.pid" 2>/dev/null || true)"
[[ -n "$MASTER" ]] && netns_track_pid "$MASTER"
WORKERS="$(nproc)"
workers_up() { [[ -n "$MASTER" && "$(pgrep -c -P "$MASTER")" == "$WORKERS" ]]; }
check "master $MASTER runs $WORKERS workers (worker_processes auto)" netns_wait_for 50 workers_up

fetch() {
    local file="$1"
    in_peer 60 curl -sS --fail --max-time 50 -o "$WORK/got-$file" "http://$STACK_ADDR/$file" &&
        same_file "$N/www/$file" "$WORK/got-$file"
}
for file in index.html 1k.bin 64k.bin 10m.bin; do
    check "curl (peer) GET /$file ($(stat -c %s "$N/www/$file") bytes), byte-exact" fetch "$file"
done
several() {
    rm -f "$WORK"/one-*
    in_peer 60 curl -sS --fail --max-time 50 -o "$WORK/one-a" -o "$WORK/one-b" -o "$WORK/one-c" \
        "http://$STACK_ADDR/10m.bin" "http://$STACK_ADDR/1k.bin" "http://$STACK_ADDR/10m.bin" &&
        same_file "$N/www/10m.bin" "$WORK/one-a" && same_file "$N/www/1k.bin" "$WORK/one-b" &&
        same_file "$N/www/10m.bin" "$WORK/one-c"
}
check "curl (peer) 10m + 1k + 10m on one keep-alive connection, byte-exact" several
missing() { [[ "$(in_peer 20 curl -sS -o /dev/null -w '%{http_code}' "http://$STACK_ADDR/missing")" == 404 ]]; }
check "curl (peer) GET /missing is a 404" missing

wrk_run() {
    local out="$1"
    shift
    in_peer 40 wrk -t 2 -c 100 -d 10s --latency "$@" "http://$STACK_ADDR/index.html" >"$out" 2>&1
    local status=$?
    cat "$out" >&2
    ((status == 0)) && wrk_clean "$out"
}
check "wrk (peer) 10 s, 100 keep-alive connections: no errors, all 2xx" wrk_run "$WORK/wrk-keepalive.txt"
check "wrk (peer) 10 s, 100 connections, 'Connection: close': no errors, all 2xx" \
    wrk_run "$WORK/wrk-close.txt" -H 'Connection: close'
check "after the load, still $WORKERS workers of master $MASTER" workers_up

loopback() {
    in_stack_ns 20 curl -sS --fail --max-time 10 -o "$WORK/loop.html" "http://127.0.0.1/index.html" &&
        same_file "$N/www/index.html" "$WORK/loop.html"
}
check "kernel curl to 127.0.0.1:80 inside $STACK_NS reaches nginx (listener on 0.0.0.0)" loopback
log_clean() {
    ! grep -E '\[(alert|crit|emerg)\]|exited on signal' "$N/error.log" >&2
}
check "nginx error.log has no alert, crit, emerg or crashed worker" log_clean
quits() {
    timeout 10 nginx -c "$N/nginx.conf" -p "$N" -s quit >&2 2>&1 &&
        netns_wait_for 100 bash -c "! kill -0 $MASTER 2>/dev/null"
}
check "nginx -s quit: master and workers exit" quits
compat_finish
