#!/usr/bin/env bash
# Programs that listen on :: (AF_INET6, dual-stack) reached over IPv4 (issue 12, first part):
#   nginx with `listen [::]:80 ipv6only=off`: curl from the peer fetches 10 MiB byte-exact, and
#   nginx's access log shows the client as ::ffff:PEER, as on the kernel;
#   python3 -m http.server --bind :: (its DualStackServer: IPV6_V6ONLY off): curl fetches a file;
# with the library, both connections are the stack's (its counters; mtcp-stat).
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cdual
MTCP_STAT="${MTCP_STAT:-$(dirname "${COMPAT_PRELOAD:-.}")/mtcp-stat}"
REGIONS="$WORK/regions"
mkdir -p "$REGIONS"
chmod 1777 "$REGIONS"
STACK_EXTRA_ENV=(MTCP_STATS_DIR="$REGIONS")

# stack_counter PID NAME  a counter of process PID from its statistics region (nothing in kernel mode).
stack_counter() {
    "$MTCP_STAT" --dir "$REGIONS" --json -p "$1" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["processes"][0]["counters"][sys.argv[1]])' "$2"
}

N="$WORK/nginx6"
nginx_config "$N" "[::]:80 ipv6only=off"
sed -i "s/^worker_processes auto;/worker_processes 1;/" "$N/nginx.conf"
make_www "$N/www"
check "nginx with 'listen [::]:80 ipv6only=off' starts ($COMPAT_MODE)" nginx_up "$N" "$WORK/nginx-start.log"
MASTER="$(cat "$N/nginx.pid" 2>/dev/null || true)"
[[ -n "$MASTER" ]] && netns_track_pid "$MASTER"
fetch() {
    in_peer 60 curl -sf -o "$WORK/10m.out" "http://$STACK_ADDR/10m.bin" && same_file "$N/www/10m.bin" "$WORK/10m.out"
}
check "curl over IPv4 to nginx's [::] listener: 10 MiB byte-exact" fetch
mapped_client() {
    sleep 0.2
    tail -n 1 "$N/access.log" >&2
    grep -q "^::ffff:$PEER_ADDR - - .*\"GET /10m.bin HTTP/1.1\" 200 " "$N/access.log"
}
check "nginx logs the IPv4 client as ::ffff:$PEER_ADDR (a v4-mapped peer address, as on the kernel)" mapped_client
if [[ "$COMPAT_MODE" == preload ]]; then
    on_the_stack() {
        local worker opens
        worker="$(pgrep -P "$MASTER" | head -1)"
        opens="$(stack_counter "$worker" passive_opens)"
        echo "nginx worker $worker: passive_opens=$opens on the stack" >&2
        [[ -n "$opens" && "$opens" -ge 1 ]]
    }
    check "the connection to nginx's AF_INET6 listener was the stack's" on_the_stack
fi
quits() {
    timeout 10 nginx -c "$N/nginx.conf" -p "$N" -s quit >&2 2>&1 &&
        netns_wait_for 100 bash -c "! kill -0 $MASTER 2>/dev/null"
}
check "nginx -s quit" quits

# Python's http.server on :: serves IPv4 too (its DualStackServer turns IPV6_V6ONLY off).
# Without --bind it takes getaddrinfo's first passive address, which on Debian is 0.0.0.0.
mkdir -p "$WORK/py"
head -c 100000 /dev/urandom >"$WORK/py/file.bin"
spawn_on_stack "$WORK/http-server.log" http-server python3 -m http.server 8000 --bind :: --directory "$WORK/py"
wait_tcp_port "$PEER_NS" "$STACK_ADDR" 8000
python_fetch() {
    in_peer 30 curl -sf -o "$WORK/file.out" "http://$STACK_ADDR:8000/file.bin" &&
        same_file "$WORK/py/file.bin" "$WORK/file.out"
}
check "curl over IPv4 to python3 -m http.server --bind ::" python_fetch
if [[ "$COMPAT_MODE" == preload ]]; then
    python_on_stack() {
        local pid opens
        pid="$(pgrep -f 'http.server 8000' | tail -1)"
        sleep 0.3  # the region is written at most 200 ms after the last change
        opens="$(stack_counter "$pid" passive_opens)"
        "$MTCP_STAT" --dir "$REGIONS" --sockets -p "$pid" >&2 || true
        echo "python3 $pid: passive_opens=$opens on the stack" >&2
        [[ -n "$opens" && "$opens" -ge 1 ]] && grep -q "Serving HTTP on :: port 8000" "$WORK/http-server.log"
    }
    check "python's server listens on :: (dual-stack) and its connection was the stack's" python_on_stack
fi
compat_finish
