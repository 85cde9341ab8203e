#!/usr/bin/env bash
# Debian's clients on the stack (in the stack's namespace) against kernel servers in the peer
# namespace, and python3's http.server on the stack fetched by the kernel's curl:
#   curl             small files and 10 MiB from a kernel nginx, byte-exact; a refused connection
#   wrk              3 s, 20 connections against the kernel nginx: no errors, all 2xx
#   redis-cli        PING, SET/GET of a random 1 MiB value against a kernel redis-server;
#                    a socket moved by dup2 to fd 9, process exits without close: no
#                    connection left behind
#   redis-benchmark  SET, GET, LPUSH, LRANGE_100 against it: no errors
#   python3 urllib   10 MiB from a kernel python3 http.server, byte-exact; a read timeout fires
#   python3 http.server on the stack (threads, blocking sockets, poll): kernel curl fetches
#                    small files and 10 MiB, also four at once, byte-exact
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup ccli
N="$WORK/nginx"
nginx_config "$N" "$PEER_ADDR:80"
make_www "$N/www"
WWW="$N/www"
say "clients ($COMPAT_MODE) in $STACK_NS at $STACK_ADDR; kernel servers in $PEER_NS at $PEER_ADDR"

# Kernel servers in the peer namespace.
in_peer 30 nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-start.log" 2>&1 || true
spawn_in_peer "$WORK/redis-server.log" 600 redis-server --port 6379 --save '' --appendonly no \
    --protected-mode no --dir "$WORK"
spawn_in_peer "$WORK/peer-http.log" 600 python3 -m http.server --bind "$PEER_ADDR" \
    --directory "$WWW" 8000
# Accepts connections and never answers (for the read timeout).
spawn_in_peer "$WORK/silent.log" 600 python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$PEER_ADDR', 9000)); s.listen(8)
held = []
while True:
    held.append(s.accept()[0])
"
servers_up() {
    local port
    for port in 80 6379 8000 9000; do
        wait_tcp_port "$PEER_NS" "$PEER_ADDR" "$port" || return 1
    done
}
check "kernel nginx, redis-server, http.server and a silent server listen in $PEER_NS" servers_up

# --- curl and wrk on the stack. ---------------------------------------------------------------
stack_curl() { on_stack 60 curl curl -sS --fail --max-time 50 "$@"; }
fetch() {
    local file="$1"
    stack_curl -o "$WORK/got-$file" "http://$PEER_ADDR/$file" && same_file "$WWW/$file" "$WORK/got-$file"
}
for file in index.html 64k.bin 10m.bin; do
    check "curl (stack) GET /$file from kernel nginx ($(stat -c %s "$WWW/$file") bytes), byte-exact" fetch "$file"
done
several() {
    stack_curl -o "$WORK/s1" -o "$WORK/s2" "http://$PEER_ADDR/10m.bin" "http://$PEER_ADDR/1k.bin" &&
        same_file "$WWW/10m.bin" "$WORK/s1" && same_file "$WWW/1k.bin" "$WORK/s2"
}
check "curl (stack) 10m + 1k on one keep-alive connection, byte-exact" several
refused() {
    local status=0
    on_stack 20 curl curl -sS --max-time 10 -o /dev/null "http://$PEER_ADDR:81/" 2>"$WORK/refused.txt" ||
        status=$?
    cat "$WORK/refused.txt" >&2
    ((status == 7))
}
check "curl (stack) to a closed port fails to connect: exit status 7 (as on the kernel)" refused
python_refused() {
    local out
    out="$(on_stack 20 python3 python3 -c "
import socket
try:
    socket.create_connection(('$PEER_ADDR', 81), timeout=5)
    print('connected')
except OSError as e:
    print(type(e).__name__, e.errno)
")"
    echo "python3: $out" >&2
    [[ "$out" == "ConnectionRefusedError 111" ]]
}
check "python3 (stack) connect to a closed port: ConnectionRefusedError, errno 111" python_refused
stack_wrk() {
    local out="$WORK/wrk.txt"
    on_stack 30 wrk wrk -t 2 -c 20 -d 3s "http://$PEER_ADDR/index.html" >"$out" 2>&1
    local status=$?
    cat "$out" >&2
    ((status == 0)) && wrk_clean "$out"
}
check "wrk (stack) 3 s, 20 connections to kernel nginx: no errors, all 2xx" stack_wrk

# --- redis clients on the stack. -------------------------------------------------------------
src() { on_stack 60 redis-cli redis-cli -h "$PEER_ADDR" -p 6379 "$@"; }
check "redis-cli (stack) PING answers PONG" test "$(src PING)" = PONG
redis_big() {
    head -c $((1 << 20)) /dev/urandom >"$WORK/value"
    [[ "$(src -x SET big <"$WORK/value")" == OK ]] || return 1
    src GET big >"$WORK/value.got" || return 1
    [[ "$(stat -c %s "$WORK/value.got")" == $(((1 << 20) + 1)) ]] || return 1
    truncate -s $((1 << 20)) "$WORK/value.got"
    same_file "$WORK/value" "$WORK/value.got"
}
check "redis-cli (stack) SET -x / GET of a random 1 MiB value, byte-exact" redis_big
# A socket moved to descriptor 9 with dup2 (as a shell's `exec 3<>` does), used with plain
# write/read, and the process exits without closing it: the kernel's redis must see the
# connection end. (Not bash's /dev/tcp itself: its printf writes through glibc's stdio, whose
# internal write cannot be interposed, and `head <&3` is a new program after exec, which a
# stack socket does not survive; see docs/PRELOAD.md.)
dup2_socket() {
    local out
    out="$(on_stack 20 python3 python3 -c "
import os, socket
s = socket.create_connection(('$PEER_ADDR', 6379))
os.dup2(s.fileno(), 9)
os.close(s.detach())
os.write(9, b'PING\r\n')
print(os.read(9, 7).decode().strip())
")"
    echo "read: $out" >&2
    [[ "$out" == "+PONG"* ]]
}
check "socket dup2'd to fd 9 (stack): PING answers +PONG through fd 9" dup2_socket
leftover() {
    local clients
    clients="$(in_peer 10 redis-cli -h "$PEER_ADDR" -p 6379 CLIENT LIST)"
    echo "$clients" >&2
    [[ "$(grep -c . <<<"$clients")" == 1 ]]
}
no_leftover() { netns_wait_for 30 leftover || leftover; }
check "after the stack clients exited, the kernel redis has no connection left from them" no_leftover
stack_benchmark() {
    local out="$WORK/benchmark.txt" lines test
    on_stack 120 redis-benchmark redis-benchmark -h "$PEER_ADDR" -p 6379 \
        -t set,get,lpush,lrange_100 -n 20000 -P "$1" -q >"$out" 2>&1
    local status=$?
    lines="$(tr '\r' '\n' <"$out" | grep -v 'rps=')"
    echo "$lines" >&2
    ((status == 0)) || return 1
    ! grep -qi error <<<"$lines" || return 1
    for test in SET GET LPUSH 'LRANGE_100 (first 100 elements)'; do
        grep -q "^$test: [0-9.]* requests per second" <<<"$lines" || return 1
    done
}
check "redis-benchmark (stack) SET GET LPUSH LRANGE_100, -P 1: no errors" stack_benchmark 1
check "redis-benchmark (stack) SET GET LPUSH LRANGE_100, -P 16: no errors" stack_benchmark 16

# --- python3 on the stack. -------------------------------------------------------------------
urllib_fetch() {
    local want got
    want="$(sha256sum <"$WWW/10m.bin" | cut -d' ' -f1)"
    got="$(on_stack 60 python3 python3 -c "
import hashlib, urllib.request
with urllib.request.urlopen('http://$PEER_ADDR:8000/10m.bin', timeout=30) as r:
    print(hashlib.sha256(r.read()).hexdigest())
")"
    echo "sha256 want $want, urllib got $got" >&2
    [[ "$got" == "$want" ]]
}
check "python3 urllib (stack) 10 MiB from kernel http.server, byte-exact" urllib_fetch
urllib_timeout() {
    local out
    out="$(on_stack 30 python3 python3 -c "
import socket, time, urllib.request
start = time.monotonic()
try:
    urllib.request.urlopen('http://$PEER_ADDR:9000/', timeout=2)
    print('answered')
except (socket.timeout, TimeoutError) as e:
    print('timeout after %.1f s' % (time.monotonic() - start))
")"
    echo "urllib: $out" >&2
    [[ "$out" =~ ^timeout\ after\ (2|3)\.[0-9]\ s$ ]]
}
check "python3 urllib (stack) against a silent server: timeout after 2 s" urllib_timeout

spawn_on_stack "$WORK/stack-http.log" http.server python3 -m http.server --bind 0.0.0.0 \
    --directory "$WWW" 8000
check "python3 http.server (stack) listens on 0.0.0.0:8000" wait_tcp_port "$PEER_NS" "$STACK_ADDR" 8000
peer_fetch() {
    local file="$1"
    in_peer 60 curl -sS --fail --max-time 50 -o "$WORK/py-$file" "http://$STACK_ADDR:8000/$file" &&
        same_file "$WWW/$file" "$WORK/py-$file"
}
for file in index.html 64k.bin 10m.bin; do
    check "kernel curl GET /$file from python3 http.server (stack), byte-exact" peer_fetch "$file"
done
four_at_once() {
    local i pids=() status=0
    for i in 1 2 3 4; do
        in_peer 60 curl -sS --fail --max-time 50 -o "$WORK/four-$i" "http://$STACK_ADDR:8000/10m.bin" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || status=1; done
    ((status == 0)) || return 1
    for i in 1 2 3 4; do same_file "$WWW/10m.bin" "$WORK/four-$i" || return 1; done
}
check "four kernel curls fetch 10 MiB from python3 http.server (stack) at once, byte-exact" four_at_once
compat_finish
