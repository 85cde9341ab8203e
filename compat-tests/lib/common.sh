# shellcheck shell=bash
# Shared by the compat-tests/test-*.sh scripts: the mode switch, running a program on the stack
# (through the preload library) or on the kernel, checks and the result line run.sh reads.
#
#   COMPAT_MODE=preload (default)  "stack side" programs run with LD_PRELOAD=$COMPAT_PRELOAD and
#                                  MTCP_IFACE/MTCP_ADDR; the stack's veth end has no kernel address
#   COMPAT_MODE=kernel             the same programs run without the library and the stack side
#                                  gets a kernel address: checks the scripts themselves
#   COMPAT_BACKEND=afpacket (default) | dpdk
#                                  the library's backend: dpdk runs the stack side with
#                                  MTCP_BACKEND=dpdk on a net_af_packet device on the stack's veth
#                                  (EAL: --no-huge --no-pci), the port named MTCP_IFACE=net_af_packet0
#   COMPAT_PRELOAD=PATH            the library (default .build/release/libmtcp-preload.so)
#   COMPAT_RUNTIME="SO..."         preloaded before the library (a sanitizer runtime for a TSan build)
#   COMPAT_LOG=LEVEL               passed on as MTCP_LOG (e.g. debug)
#   COMPAT_KEEP=1                  keep the work directory (logs, library counters) afterwards
set -euo pipefail

COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$COMPAT_DIR/.." && pwd)"
# shellcheck source=tests/interop/lib/netns.sh
source "$ROOT/tests/interop/lib/netns.sh"

COMPAT_MODE="${COMPAT_MODE:-preload}"
COMPAT_PRELOAD="${COMPAT_PRELOAD:-$ROOT/.build/release/libmtcp-preload.so}"
case "$COMPAT_MODE" in
    preload | kernel) ;;
    *)
        echo "compat: COMPAT_MODE must be preload or kernel, not '$COMPAT_MODE'" >&2
        exit 2
        ;;
esac
COMPAT_BACKEND="${COMPAT_BACKEND:-afpacket}"
case "$COMPAT_BACKEND" in
    afpacket | dpdk) ;;
    *)
        echo "compat: COMPAT_BACKEND must be afpacket or dpdk, not '$COMPAT_BACKEND'" >&2
        exit 2
        ;;
esac
if [[ "$COMPAT_MODE" == preload && ! -f "$COMPAT_PRELOAD" ]]; then
    echo "compat: no preload library at $COMPAT_PRELOAD (run compat-tests/run.sh, which builds it)" >&2
    exit 2
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "compat: needs root (network namespaces)" >&2
    exit 2
fi

COMPAT_NAME="$(basename "$0" .sh)"
COMPAT_NAME="${COMPAT_NAME#test-}"
WORK="$(mktemp -d "/tmp/mtcp-compat-$COMPAT_NAME.XXXXXX")"
# Servers drop privileges (nginx workers run as www-data) and must reach their files.
chmod 755 "$WORK"
mkdir -p "$WORK/stats"
chmod 1777 "$WORK/stats"
# Until netns_setup installs the harness's trap (which runs the hooks below).
trap 'rm -rf "$WORK"' EXIT
# Library counters and logs after a failure are printed first, then the work directory goes.
NETNS_CLEANUP_HOOKS+=("compat_dump_on_failure")
if [[ "${COMPAT_KEEP:-0}" == 1 ]]; then
    echo "compat $COMPAT_NAME: work directory $WORK is kept"
else
    NETNS_CLEANUP_HOOKS+=("rm -rf '$WORK'")
fi
COMPAT_PASSED=0
COMPAT_FAILED=0
STACK_EXTRA_ENV=()
COMPAT_FAILURES=()
# 1 once compat_enable_ipv6 ran: the stack's MTCP_ADDR carries STACK_ADDR6 too.
COMPAT_IPV6=0

say() { printf 'compat %s: %s\n' "$COMPAT_NAME" "$*"; }

# check DESCRIPTION CMD...  runs CMD (its output goes to stderr, the detail log); prints PASS or
# FAIL on stdout.
check() {
    local what="$1"
    shift
    echo "+ $*" >&2
    if "$@" >&2; then
        COMPAT_PASSED=$((COMPAT_PASSED + 1))
        echo "PASS: $what"
    else
        COMPAT_FAILED=$((COMPAT_FAILED + 1))
        COMPAT_FAILURES+=("$what")
        echo "FAIL: $what"
    fi
}

# fail DESCRIPTION  counts a failure found without a command (e.g. a set-up step).
fail() {
    COMPAT_FAILED=$((COMPAT_FAILED + 1))
    COMPAT_FAILURES+=("$1")
    echo "FAIL: $1"
}

# compat_finish  prints the summary and the line run.sh counts; exits 0 when nothing failed.
compat_finish() {
    if ((COMPAT_FAILED > 0)); then
        say "failed: $(printf '%s; ' "${COMPAT_FAILURES[@]}")"
    fi
    echo "compat-result: $COMPAT_NAME passed=$COMPAT_PASSED failed=$COMPAT_FAILED"
    ((COMPAT_FAILED == 0))
}

# Prints the library's counters (MTCP_STATS files) and the logs of the work directory when the
# script is ending with failures, so a CI log says what the stack saw.
compat_dump_on_failure() {
    ((COMPAT_FAILED > 0)) || return 0
    local file
    while read -r file; do
        echo "----- $file (last 40 lines)"
        tail -n 40 "$file"
    done < <(find "$WORK" -maxdepth 3 -type f \( -path "$WORK/stats/*" -o -name '*.log' \) \
        ! -name access.log | sort)
}

# compat_setup PREFIX  makes a stack namespace and its kernel peer (netns_setup --stack-ns);
# in kernel mode the stack side gets STACK_ADDR as a kernel address.
compat_setup() {
    netns_setup --stack-ns "$1"
    if [[ "$COMPAT_MODE" == kernel ]]; then netns_stack_kernel_address; fi
}

# compat_enable_ipv6  (opt-in, after compat_setup) IPv6 on the link, as tests/interop/test-ipv6.sh
# sets it up (netns_setup leaves IPv6 off on both ends). Sets STACK_ADDR6 (fd77:N::2) and
# PEER_ADDR6 (fd77:N::1), N the last octet of PREFIX. The peer gets PEER_ADDR6/64 without DAD
# and a usable link-local address. With the library the stack owns STACK_ADDR6: every program
# on STACK_ADDR gets MTCP_ADDR=STACK_ADDR/24,STACK_ADDR6/64, and STACK_IF stays without IPv6 in
# its kernel (checked: the kernel would answer for the stack). In kernel mode the kernel of
# STACK_NS gets STACK_ADDR6/64 on STACK_IF instead.
compat_enable_ipv6() {
    local net="${PREFIX##*.}" ns
    export STACK_ADDR6="fd77:$net::2" PEER_ADDR6="fd77:$net::1"
    local -a sides=("$PEER_NS|$PEER_IF|$PEER_ADDR6")
    if [[ "$COMPAT_MODE" == kernel ]]; then sides+=("$STACK_NS|$STACK_IF|$STACK_ADDR6"); fi
    local side iface addr
    for side in "${sides[@]}"; do
        IFS='|' read -r ns iface addr <<<"$side"
        ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=0 >/dev/null &&
            ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.disable_ipv6=0 >/dev/null &&
            ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$iface.accept_dad=0" >/dev/null &&
            ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$iface.accept_ra=0" >/dev/null &&
            ip netns exec "$ns" sysctl -q -w "net.ipv6.conf.$iface.disable_ipv6=0" >/dev/null &&
            ip -n "$ns" addr add "$addr/64" dev "$iface" nodad || return 1
        # The kernel adds the link-local address when IPv6 comes up on the (up) interface.
        if ! netns_wait_for 50 sh -c "ip -n '$ns' -6 addr show dev '$iface' scope link | grep 'inet6 fe80' | grep -qv tentative"; then
            echo "compat: no usable link-local address on $iface in $ns" >&2
            ip -n "$ns" -6 addr show dev "$iface" >&2
            return 1
        fi
    done
    if [[ "$COMPAT_MODE" == preload ]]; then
        if [[ "$(ip netns exec "$STACK_NS" cat "/proc/sys/net/ipv6/conf/$STACK_IF/disable_ipv6")" != 1 ]]; then
            echo "compat: IPv6 is on in the kernel for $STACK_IF: it would answer for the stack" >&2
            return 1
        fi
    fi
    COMPAT_IPV6=1
}

# compat_setup_pair PREFIX  two stack namespaces facing each other (netns_setup_stack_pair).
compat_setup_pair() {
    netns_setup_stack_pair "$1"
    if [[ "$COMPAT_MODE" == kernel ]]; then netns_stack_pair_kernel_addresses; fi
}

# stack_command NS IFACE ADDR SECONDS LABEL CMD...  sets STACK_CMD to the command line that
# runs CMD in namespace NS on the stack, for at most SECONDS: with the library, its interface
# and address, and its counters written to $WORK/stats/LABEL.PID at exit. In kernel mode, just
# CMD in NS.
stack_command() {
    local ns="$1" iface="$2" addr="$3" limit="$4" label="$5"
    shift 5
    STACK_CMD=(timeout -k 5 "$limit" ip netns exec "$ns")
    if [[ "$COMPAT_MODE" == preload ]]; then
        local mtcp_addr="$addr/24"
        # With compat_enable_ipv6, the stack of STACK_ADDR also owns STACK_ADDR6.
        if [[ "$COMPAT_IPV6" == 1 && "$addr" == "${STACK_ADDR:-}" ]]; then mtcp_addr+=",$STACK_ADDR6/64"; fi
        STACK_CMD+=(env LD_PRELOAD="${COMPAT_RUNTIME:+$COMPAT_RUNTIME }$COMPAT_PRELOAD" MTCP_STATS="$WORK/stats/$label")
        # COMPAT_SHARED_ADDRESS=1: no MTCP_ADDR, the library takes the kernel's address of IFACE.
        if [[ "${COMPAT_SHARED_ADDRESS:-0}" != 1 ]]; then STACK_CMD+=(MTCP_ADDR="$mtcp_addr"); fi
        if [[ "$COMPAT_BACKEND" == dpdk ]]; then
            # The EAL's own memory (no hugepages), a net_af_packet port on the namespace's veth.
            STACK_CMD+=(MTCP_BACKEND=dpdk MTCP_IFACE=net_af_packet0
                MTCP_DPDK_ARGS="--no-huge --no-pci --vdev=net_af_packet0,iface=$iface")
        else
            STACK_CMD+=(MTCP_IFACE="$iface")
        fi
        if [[ -n "${COMPAT_LOG:-}" ]]; then STACK_CMD+=(MTCP_LOG="$COMPAT_LOG"); fi
        # More settings for the library, e.g. MTCP_ENABLE=0.
        STACK_CMD+=("${STACK_EXTRA_ENV[@]}")
    fi
    STACK_CMD+=("$@")
}

# stack_run NS IFACE ADDR SECONDS LABEL CMD...  runs that command.
stack_run() {
    stack_command "$@"
    "${STACK_CMD[@]}"
}

# stack_spawn LOG NS IFACE ADDR SECONDS LABEL CMD...  runs it in the background, output to LOG;
# PID (of the `timeout` around it, which passes SIGTERM on) in SPAWNED, ended by the clean-up.
stack_spawn() {
    local log="$1"
    shift
    stack_command "$@"
    "${STACK_CMD[@]}" >"$log" 2>&1 &
    SPAWNED=$!
    netns_track_pid "$SPAWNED"
}

# on_stack SECONDS LABEL CMD...  stack_run in STACK_NS with STACK_IF and STACK_ADDR.
on_stack() {
    stack_run "$STACK_NS" "$STACK_IF" "$STACK_ADDR" "$@"
}

# spawn_on_stack LOG LABEL CMD...  on_stack in the background for at most 900 s (stack_spawn).
spawn_on_stack() {
    local log="$1"
    shift
    stack_spawn "$log" "$STACK_NS" "$STACK_IF" "$STACK_ADDR" 900 "$@"
}

# spawn_in_peer LOG SECONDS CMD...  CMD in the kernel's namespace in the background, bounded;
# PID (of its `timeout`) in SPAWNED.
spawn_in_peer() {
    local log="$1" limit="$2"
    shift 2
    timeout -k 5 "$limit" ip netns exec "$PEER_NS" "$@" >"$log" 2>&1 &
    SPAWNED=$!
    netns_track_pid "$SPAWNED"
}

# in_peer SECONDS CMD...  runs CMD in the kernel's namespace, bounded.
in_peer() {
    local limit="$1"
    shift
    timeout -k 5 "$limit" ip netns exec "$PEER_NS" "$@"
}

# in_stack_ns SECONDS CMD...  runs CMD in the stack's namespace on the kernel (no library).
in_stack_ns() {
    local limit="$1"
    shift
    timeout -k 5 "$limit" ip netns exec "$STACK_NS" "$@"
}

# stop_pid PID  SIGTERM, then a bounded wait, then SIGKILL.
stop_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# same_file A B  byte-exact comparison by SHA-256 (printed).
same_file() {
    local a b
    a="$(sha256sum <"$1" | cut -d' ' -f1)"
    b="$(sha256sum <"$2" 2>/dev/null | cut -d' ' -f1)"
    echo "sha256 $1: $a; $2: ${b:-missing}" >&2
    [[ -n "$b" && "$a" == "$b" ]]
}

# wait_tcp_port NS ADDR PORT  waits (up to 10 s) until ADDR:PORT accepts a connection from NS.
wait_tcp_port() {
    local ns="$1" addr="$2" port="$3"
    netns_wait_for 100 timeout 2 ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/$addr/$port"
}

# wrk_clean OUTPUT  true when wrk's report shows requests, no socket errors and no non-2xx/3xx
# responses (wrk prints those lines only when they are not zero).
wrk_clean() {
    local out="$1" requests
    requests="$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$out")"
    echo "wrk: ${requests:-no} requests; $(grep -E 'Socket errors|Non-2xx' "$out" | tr -s ' ' | tr '\n' ';')" >&2
    [[ -n "$requests" && "$requests" -gt 0 ]] || return 1
    if grep -q 'Socket errors:' "$out"; then
        grep -Eq 'Socket errors: connect 0, read 0, write 0, timeout 0$' "$out" || return 1
    fi
    ! grep -q 'Non-2xx or 3xx responses' "$out"
}

# make_www DIR  writes the files the HTTP tests fetch: index.html, 1k.bin, 64k.bin, 10m.bin.
make_www() {
    local dir="$1"
    mkdir -p "$dir"
    printf '<html><body>hello from compat-tests</body></html>\n' >"$dir/index.html"
    head -c 1024 /dev/urandom >"$dir/1k.bin"
    head -c $((64 << 10)) /dev/urandom >"$dir/64k.bin"
    head -c $((10 << 20)) /dev/urandom >"$dir/10m.bin"
    chmod 755 "$dir"
    chmod 644 "$dir"/*
}

# nginx_config DIR LISTEN  writes DIR/nginx.conf: Debian's defaults where they matter (a master
# that daemonizes, one worker per core as www-data, sendfile, tcp_nopush), everything else in DIR.
nginx_config() {
    local dir="$1" listen="$2"
    mkdir -p "$dir/tmp" "$dir/www"
    chmod 755 "$dir" "$dir/www"
    cat >"$dir/nginx.conf" <<CONF
user ${COMPAT_NGINX_USER:-www-data};
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 768; }
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server { listen $listen; root $dir/www; }
}
CONF
}

# nginx_site DIR WORKERS  nginx_config DIR 80 with WORKERS worker processes, make_www, and a 4 MB
# file at /slow/4m.bin served at limit_rate 1m (downloads that outlive reloads and stops).
nginx_site() {
    local dir="$1" workers="$2"
    nginx_config "$dir" 80
    sed -i "s/^worker_processes auto;/worker_processes $workers;/" "$dir/nginx.conf"
    sed -i "s|server { listen 80; root $dir/www; }|server { listen 80; root $dir/www; location /slow/ { limit_rate 1m; } }|" \
        "$dir/nginx.conf"
    make_www "$dir/www"
    mkdir -p "$dir/www/slow"
    head -c 4000000 /dev/urandom >"$dir/www/slow/4m.bin"
    chmod 755 "$dir/www/slow"
    chmod 644 "$dir/www/slow/4m.bin"
}

# stat_field FILE NAME  one counter of an MTCP_STATS file (the line a process writes at exit).
stat_field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | head -1; }

# stats_sum LABEL NAME  counter NAME summed over the MTCP_STATS files of LABEL's processes.
stats_sum() {
    local file value sum=0
    for file in "$WORK/stats/$1".*; do
        [[ -e "$file" ]] || continue
        value="$(stat_field "$file" "$2")"
        sum=$((sum + ${value:-0}))
    done
    echo "$sum"
}

# nginx_quit DIR  stops DIR's nginx gracefully (QUIT to the master) and waits until it exited
# (its processes' MTCP_STATS files are written then).
nginx_quit() {
    local master
    master="$(cat "$1/nginx.pid")"
    kill -QUIT "$master"
    netns_wait_for 100 bash -c "! kill -0 $master 2>/dev/null"
}

# nginx_up DIR LOG  starts (on the stack) the nginx of DIR/nginx.conf, which daemonizes, and waits
# for its pid file and for port 80 to accept.
nginx_up() {
    local dir="$1" log="$2"
    on_stack 30 nginx nginx -c "$dir/nginx.conf" -p "$dir" >"$log" 2>&1 &&
        netns_wait_for 100 test -s "$dir/nginx.pid" && wait_tcp_port "$PEER_NS" "$STACK_ADDR" 80
}
