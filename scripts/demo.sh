#!/usr/bin/env bash
# The project's main job: unmodified Linux programs on the user-level stack.
#
# Each part makes its own network namespaces and veth pair (removed again on exit, also on
# failure). First nginx, unmodified, runs on our stack through mtcp-run (the LD_PRELOAD
# library) in one namespace, and the kernel's curl fetches from it in the other: the files
# are checked byte-exact and every nginx process's stack counters are printed. Then
# mtcp-httpd, written on the stack's own API, answers the kernel's ping and curl. Last, the
# simulation demo runs the TCP core over a lossy simulated link.
#
#   bash scripts/demo.sh            # all three parts
#   bash scripts/demo.sh --nginx    # only nginx through mtcp-run
#   bash scripts/demo.sh --veth     # only mtcp-httpd
#   bash scripts/demo.sh --sim ...  # only the simulation; further arguments go to mtcp-sim-demo
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"
mtcp_install_deps

MODE="all"
if [[ "${1:-}" == "--nginx" || "${1:-}" == "--veth" || "${1:-}" == "--sim" ]]; then
    MODE="${1#--}"
    shift
fi

echo "demo.sh: building (release)"
swift build -c release </dev/null
BIN="$(swift build -c release --show-bin-path </dev/null)"

# shellcheck source=tests/interop/lib/netns.sh
source "$ROOT/tests/interop/lib/netns.sh"

# Bounded wait (tenths of a second) for process PID to end; 1 if it is still there.
wait_gone() {
    local pid="$1" tenths="$2" i
    for ((i = 0; i < tenths; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Fails unless files A and B have the same SHA-256; prints it.
same_sha256() {
    local a b
    a="$(sha256sum <"$1" | cut -d' ' -f1)"
    b="$(sha256sum <"$2" | cut -d' ' -f1)"
    if [[ "$a" == "$b" ]]; then
        echo "byte-exact: yes (sha256 ${a:0:16}...)"
    else
        echo "byte-exact: NO ($(basename "$1") $a, fetched $b)" >&2
        return 1
    fi
}

# The PIDs whose parent is PID, on one line (from /proc: procps may not be installed).
children_of() {
    local status pids=()
    for status in /proc/[0-9]*/status; do
        if grep -q "^PPid:[[:space:]]*$1\$" "$status" 2>/dev/null; then
            status="${status#/proc/}"
            pids+=("${status%/status}")
        fi
    done
    echo "${pids[*]}"
}

nginx_demo() {
    # mtcp-run finds the library next to itself, or at MTCP_PRELOAD_LIBRARY.
    local library="${MTCP_PRELOAD_LIBRARY:-$BIN/libmtcp-preload.so}"
    if [[ ! -f "$library" ]]; then
        echo "demo.sh: $library is missing; the nginx part needs the preload library" >&2
        return 1
    fi
    command -v nginx >/dev/null || { echo "demo.sh: nginx is not installed" >&2; return 1; }
    netns_setup --stack-ns nginx
    local tmp
    tmp="$(mktemp -d /tmp/mtcp-nginx.XXXXXX)"
    NETNS_CLEANUP_HOOKS+=("rm -rf '$tmp'")
    mkdir "$tmp/www" "$tmp/temp" "$tmp/stats"
    echo "<h1>Hello from nginx, unmodified, on a user-level TCP stack in Swift</h1>" >"$tmp/www/index.html"
    head -c $((1 << 20)) /dev/urandom >"$tmp/www/1MiB.bin"
    # The workers run as www-data (Debian's default): they read the files and, at exit,
    # write their counters into the stats directory.
    chmod 755 "$tmp" "$tmp/www"
    chmod 644 "$tmp/www/index.html" "$tmp/www/1MiB.bin"
    chmod 1777 "$tmp/stats"
    # Debian's nginx.conf, cut down to one site: master and workers (one per core), sendfile.
    cat >"$tmp/nginx.conf" <<CONF
user www-data;
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 768; }
http {
    sendfile on;
    tcp_nopush on;
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    access_log $tmp/access.log;
    client_body_temp_path $tmp/temp/body;
    proxy_temp_path $tmp/temp/proxy;
    fastcgi_temp_path $tmp/temp/fastcgi;
    uwsgi_temp_path $tmp/temp/uwsgi;
    scgi_temp_path $tmp/temp/scgi;
    server {
        listen 80 default_server;
        root $tmp/www;
        index index.html;
    }
}
CONF
    echo
    echo "demo.sh: namespace $STACK_NS: our stack owns $STACK_IF as $STACK_ADDR ($STACK_MAC);"
    echo "demo.sh: namespace $PEER_NS: the kernel has $PEER_ADDR on $PEER_IF"
    echo
    echo "\$ mtcp-run --iface $STACK_IF --addr $STACK_ADDR/24 --stats $tmp/stats/nginx -- nginx -c $tmp/nginx.conf -g 'daemon off;'"
    netns_stack_spawn "$BIN/mtcp-run" --iface "$STACK_IF" --addr "$STACK_ADDR/24" --stats "$tmp/stats/nginx" \
        -- nginx -c "$tmp/nginx.conf" -g 'daemon off;' >"$tmp/nginx.out" 2>&1
    local launcher="$NETNS_LAST_PID" i ready=0
    for i in $(seq 1 100); do
        if netns_exec curl -s -o /dev/null --max-time 1 "http://$STACK_ADDR/"; then
            ready=1
            break
        fi
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.1
    done
    if ((!ready)); then
        echo "demo.sh: nginx on the stack did not answer; its output and error log:" >&2
        cat "$tmp/nginx.out" "$tmp/error.log" >&2 2>/dev/null || true
        return 1
    fi
    local master
    master="$(cat "$tmp/nginx.pid")"
    echo "nginx master $master, workers: $(children_of "$master")"
    echo
    echo "\$ curl -i http://$STACK_ADDR/         (kernel TCP client in $PEER_NS -> nginx on our stack)"
    netns_exec curl -sS --max-time 20 -D "$tmp/headers.txt" -o "$tmp/got-index.html" "http://$STACK_ADDR/"
    grep -i -E "^(HTTP|Server)" "$tmp/headers.txt" | tr -d '\r'
    cat "$tmp/got-index.html"
    same_sha256 "$tmp/www/index.html" "$tmp/got-index.html"
    echo
    echo "\$ curl -o file http://$STACK_ADDR/1MiB.bin"
    netns_exec curl -sS --max-time 60 -o "$tmp/got.bin" \
        -w "fetched %{size_download} bytes at %{speed_download} bytes/s\n" "http://$STACK_ADDR/1MiB.bin"
    same_sha256 "$tmp/www/1MiB.bin" "$tmp/got.bin"
    echo
    echo "\$ curl http://127.0.0.1/        (inside $STACK_NS: loopback is the kernel's; MTCP_KERNEL_LISTEN=1)"
    netns_stack_exec curl -sS --max-time 20 -o "$tmp/got-loopback.html" "http://127.0.0.1/"
    same_sha256 "$tmp/www/index.html" "$tmp/got-loopback.html"
    if [[ -x "$BIN/mtcp-stat" ]]; then
        echo
        echo "\$ mtcp-stat --sockets -p $(children_of "$master" | awk '{print $1}')     (the worker, seen from outside: ss cannot see the stack's sockets)"
        sleep 0.3  # the worker writes its table at most 200 ms after the last change
        "$BIN/mtcp-stat" --sockets -p "$(children_of "$master" | awk '{print $1}')" || true
    fi
    echo
    echo "\$ kill -QUIT $master                (graceful stop: the workers finish and write their counters)"
    kill -QUIT "$master"
    if ! wait_gone "$master" 150; then
        echo "demo.sh: nginx did not stop within 15 s" >&2
        return 1
    fi
    wait_gone "$launcher" 50 || true
    wait "$launcher" 2>/dev/null || true
    echo
    local file pid role count=0
    for file in "$tmp"/stats/nginx.*; do
        [[ -f "$file" ]] || continue
        count=$((count + 1))
        pid="${file##*.}"
        role="worker"
        [[ "$pid" == "$master" ]] && role="master"
        echo "stack counters of nginx $role $pid ($file):"
        sed 's/^/    /' "$file"
    done
    if ((count == 0)); then
        echo "demo.sh: no counter files in $tmp/stats (MTCP_STATS); nginx output:" >&2
        cat "$tmp/nginx.out" >&2 || true
        return 1
    fi
    netns_cleanup
    NETNS_CLEANUP_HOOKS=()
}

veth_demo() {
    netns_setup demo
    local www
    www="$(mktemp -d /tmp/mtcp-demo.XXXXXX)"
    NETNS_CLEANUP_HOOKS+=("rm -rf '$www'")
    echo "<h1>Hello from a user-level TCP stack in Swift</h1>" >"$www/index.html"
    head -c $((8 << 20)) /dev/urandom >"$www/8MiB.bin"
    echo
    echo "demo.sh: our stack owns $STACK_IF as $STACK_ADDR ($STACK_MAC); the kernel has $PEER_ADDR in namespace $PEER_NS"
    "$BIN/mtcp-httpd" --iface "$STACK_IF" --addr "$STACK_ADDR/24" --root "$www" --port 80 --duration 120 \
        >"$www/httpd.log" 2>&1 &
    local server=$!
    netns_track_pid "$server"
    local i
    for i in $(seq 1 100); do grep -q serving "$www/httpd.log" && break; sleep 0.1; done
    echo
    echo "\$ ping -c 3 $STACK_ADDR            (kernel -> stack, ICMP echo answered by our stack)"
    ip netns exec "$PEER_NS" ping -c 3 -i 0.2 "$STACK_ADDR"
    echo
    echo "\$ curl http://$STACK_ADDR/         (kernel TCP client -> our TCP + HTTP server)"
    ip netns exec "$PEER_NS" curl -sS --max-time 20 "http://$STACK_ADDR/"
    echo
    echo "\$ curl -o file http://$STACK_ADDR/8MiB.bin"
    ip netns exec "$PEER_NS" curl -sS --max-time 60 -o "$www/got.bin" \
        -w "fetched %{size_download} bytes at %{speed_download} bytes/s\n" "http://$STACK_ADDR/8MiB.bin"
    if cmp -s "$www/8MiB.bin" "$www/got.bin"; then echo "byte-exact: yes"; else echo "byte-exact: NO"; fi
    kill -TERM "$server"
    wait "$server" || true
    echo
    echo "our stack's counters:"
    tr ' ' '\n' <"$www/httpd.log" | grep "=" | sed 's/^/    /'
    netns_cleanup
    NETNS_CLEANUP_HOOKS=()
}

if [[ "$MODE" == "all" || "$MODE" == "nginx" ]]; then nginx_demo; fi
if [[ "$MODE" == "all" || "$MODE" == "veth" ]]; then veth_demo; fi
if [[ "$MODE" == "all" || "$MODE" == "sim" ]]; then
    echo
    echo "demo.sh: the TCP core over a simulated lossy network: $BIN/mtcp-sim-demo $*"
    "$BIN/mtcp-sim-demo" "$@"
fi
