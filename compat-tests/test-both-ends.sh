#!/usr/bin/env bash
# Both ends of every connection on the stack, each in its own namespace (netns_setup_stack_pair):
#   nginx on A, and from B: curl (10 MiB, byte-exact) and wrk 5 s, 50 connections (no errors)
#   redis-server on A, and from B: redis-cli (1 MiB value, byte-exact) and redis-benchmark SET,
#   GET, LPUSH, LRANGE_100 with -P 1 and -P 16 (no errors)
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup_pair cpair
N="$WORK/nginx"
nginx_config "$N" 80
make_www "$N/www"
WWW="$N/www"
say "servers ($COMPAT_MODE) in $STACK_A_NS at $STACK_A_ADDR; clients ($COMPAT_MODE) in $STACK_B_NS at $STACK_B_ADDR"
on_a() { stack_run "$STACK_A_NS" "$STACK_A_IF" "$STACK_A_ADDR" "$@"; }
on_b() { stack_run "$STACK_B_NS" "$STACK_B_IF" "$STACK_B_ADDR" "$@"; }
# A plain kernel probe cannot reach A's stack from B (B's kernel has no address): probe with
# a client on B's stack that closes its connection.
probe() {
    local port="$1"
    local i
    for ((i = 0; i < 15; i++)); do
        on_b 4 probe python3 -c "import socket; socket.create_connection(('$STACK_A_ADDR', $port), timeout=3).close()" \
            2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

nginx_start() {
    on_a 30 nginx nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-start.log" 2>&1 &&
        netns_wait_for 100 test -s "$N/nginx.pid" && probe 80
}
check "nginx (A) starts, B reaches $STACK_A_ADDR:80" nginx_start
fetch() {
    local file="$1"
    on_b 60 curl curl -sS --fail --max-time 50 -o "$WORK/got-$file" "http://$STACK_A_ADDR/$file" &&
        same_file "$WWW/$file" "$WORK/got-$file"
}
for file in index.html 10m.bin; do
    check "curl (B) GET /$file from nginx (A), byte-exact" fetch "$file"
done
pair_wrk() {
    local out="$WORK/wrk.txt"
    on_b 30 wrk wrk -t 2 -c 50 -d 5s "http://$STACK_A_ADDR/index.html" >"$out" 2>&1
    local status=$?
    cat "$out" >&2
    ((status == 0)) && wrk_clean "$out"
}
check "wrk (B) 5 s, 50 connections to nginx (A): no errors, all 2xx" pair_wrk
quits() {
    local master
    master="$(cat "$N/nginx.pid")"
    timeout 10 nginx -c "$N/nginx.conf" -p "$N" -s quit >&2 2>&1 &&
        netns_wait_for 100 bash -c "! kill -0 $master 2>/dev/null"
}
check "nginx (A) quits" quits

stack_spawn "$WORK/redis-server.log" "$STACK_A_NS" "$STACK_A_IF" "$STACK_A_ADDR" 600 redis \
    redis-server --port 6379 --save '' --appendonly no --protected-mode no --dir "$WORK"
check "redis-server (A) starts, B reaches $STACK_A_ADDR:6379" probe 6379
rcb() { on_b 60 redis-cli redis-cli -h "$STACK_A_ADDR" -p 6379 "$@"; }
redis_big() {
    head -c $((1 << 20)) /dev/urandom >"$WORK/value"
    [[ "$(rcb -x SET big <"$WORK/value")" == OK ]] || return 1
    rcb GET big >"$WORK/value.got" || return 1
    [[ "$(stat -c %s "$WORK/value.got")" == $(((1 << 20) + 1)) ]] || return 1
    truncate -s $((1 << 20)) "$WORK/value.got"
    same_file "$WORK/value" "$WORK/value.got"
}
check "redis-cli (B) SET -x / GET of a random 1 MiB value on redis (A), byte-exact" redis_big
pair_benchmark() {
    local out="$WORK/benchmark-P$1.txt" lines test
    on_b 120 redis-benchmark redis-benchmark -h "$STACK_A_ADDR" -p 6379 \
        -t set,get,lpush,lrange_100 -n "$2" -P "$1" -q >"$out" 2>&1
    local status=$?
    lines="$(tr '\r' '\n' <"$out" | grep -v 'rps=')"
    echo "$lines" >&2
    ((status == 0)) || return 1
    ! grep -qi error <<<"$lines" || return 1
    for test in SET GET LPUSH 'LRANGE_100 (first 100 elements)'; do
        grep -q "^$test: [0-9.]* requests per second" <<<"$lines" || return 1
    done
}
check "redis-benchmark (B) to redis (A), -P 1, -n 20000: no errors" pair_benchmark 1 20000
check "redis-benchmark (B) to redis (A), -P 16, -n 100000: no errors" pair_benchmark 16 100000
compat_finish
