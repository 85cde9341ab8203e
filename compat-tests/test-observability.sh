#!/usr/bin/env bash
# What runs on the stack, seen from outside (issue 14): nginx (1 worker) under the library,
# read by mtcp-stat from the statistics regions its processes publish in shared memory.
#   mtcp-stat lists the master and the worker (running, interface, backend, instances);
#   during wrk -c20 keep-alive, `mtcp-stat --sockets` lists 20 ESTAB connections whose
#   addresses are those `ss -tn` shows on the kernel peer; -i prints rates; --reset counts
#   from zero; a socket the kernel keeps (AF_INET6 bound to ::1) is listed with why;
#   after kill -9 of the worker, `mtcp-stat -p PID` still shows its last counters (dead),
#   and --clean removes the region;
#   a capture (MTCP_PCAP) of a 10 MiB download with 1% loss on the stack's transmit side:
#   the file is byte-exact, tshark reads the capture with no malformed frame and no bad IP
#   or TCP checksum, and counts the retransmissions the stack's counters report.
# The library's feature: in kernel mode there is nothing to check.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

if [[ "$COMPAT_MODE" != preload ]]; then
    say "skipped in kernel mode (mtcp-stat reads the library's regions)"
    compat_finish
    exit
fi
MTCP_STAT="${MTCP_STAT:-$(dirname "$COMPAT_PRELOAD")/mtcp-stat}"
if [[ ! -x "$MTCP_STAT" ]]; then
    fail "mtcp-stat is built next to the library ($MTCP_STAT)"
    compat_finish
    exit
fi

compat_setup cobs
REGIONS="$WORK/regions"
mkdir -p "$REGIONS" "$WORK/capture"
chmod 1777 "$REGIONS" "$WORK/capture"  # nginx's worker runs as www-data
STACK_EXTRA_ENV=(MTCP_STATS_DIR="$REGIONS")
stat_json() { "$MTCP_STAT" --dir "$REGIONS" --json "$@"; }

# json_get FILE EXPRESSION  evaluates a Python expression over the report `r` (and the first
# process `p`).
json_get() {
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); p=(r["processes"] or [{}])[0]; print(eval(sys.argv[2]))' "$1" "$2"
}

N="$WORK/nginx"
nginx_site "$N" 1
# wrk's 20 connections stay the same 20 for the whole run (nginx closes one after 1,000 requests).
sed -i 's/^http {/http { keepalive_requests 10000000;/' "$N/nginx.conf"
check "nginx (1 worker) starts on the stack" nginx_up "$N" "$WORK/nginx-start.log"
MASTER="$(cat "$N/nginx.pid" 2>/dev/null || true)"
[[ -n "$MASTER" ]] && netns_track_pid "$MASTER"
worker_up() { [[ -n "$MASTER" && "$(pgrep -c -P "$MASTER")" == 1 ]]; }
check "the master runs its worker" netns_wait_for 50 worker_up
WORKER="$(pgrep -P "$MASTER" | head -1)"
# The worker opens its stack with its first request.
in_peer 10 curl -sf -o /dev/null "http://$STACK_ADDR/index.html" || true

listed() {
    "$MTCP_STAT" --dir "$REGIONS" >"$WORK/list.txt" 2>&1
    cat "$WORK/list.txt" >&2
    grep -q "^pid $MASTER nginx (running) preload on $STACK_IF as $STACK_ADDR/24, backend $COMPAT_BACKEND" \
        "$WORK/list.txt" || grep -q "^pid $MASTER nginx (running) preload on net_af_packet0" "$WORK/list.txt" ||
        return 1
    grep -q "^pid $WORKER nginx (running)" "$WORK/list.txt" && grep -q "passive_opens=" "$WORK/list.txt"
}
check "mtcp-stat lists the master ($MASTER) and the worker ($WORKER) with their counters" listed

spawn_in_peer "$WORK/wrk.txt" 40 wrk -t 1 -c 20 -d 8s "http://$STACK_ADDR/index.html"
WRK=$SPAWNED
sleep 3
sockets_match() {
    stat_json --sockets -p "$WORKER" >"$WORK/sockets.json" || return 1
    in_peer 5 ss -Htn state established "( dport = :80 )" >"$WORK/ss.txt" || return 1
    "$MTCP_STAT" --dir "$REGIONS" --sockets -p "$WORKER" >"$WORK/sockets.txt" 2>&1
    cat "$WORK/sockets.txt" >&2
    python3 - "$WORK/sockets.json" "$WORK/ss.txt" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
stack = sorted(s["peer"] for s in report["processes"][0]["sockets"]
               if s["state"] == "ESTAB" and s["local"].endswith(":80"))
peer = sorted(line.split()[-2] for line in open(sys.argv[2]) if line.strip())
print(f"stack ESTAB peers ({len(stack)}): {stack}\npeer's ss -tn ({len(peer)}): {peer}", file=sys.stderr)
sys.exit(0 if len(stack) == 20 and stack == peer else 1)
PY
}
check "during wrk -c20: mtcp-stat --sockets lists 20 ESTAB connections, the peer's ss -tn the same 20" sockets_match
rates() {
    "$MTCP_STAT" --dir "$REGIONS" -p "$WORKER" -i 0.5 -c 2 >"$WORK/rates.txt" 2>&1
    cat "$WORK/rates.txt" >&2
    [[ "$(grep -c "^pid $WORKER" "$WORK/rates.txt")" == 2 ]] && grep -Eq 'frames_in/s=[1-9]' "$WORK/rates.txt"
}
check "mtcp-stat -i 0.5 -c 2: two reports of rates while wrk runs" rates
wait "$WRK" || true
wrk_ok() {
    cat "$WORK/wrk.txt" >&2
    wrk_clean "$WORK/wrk.txt"
}
check "wrk -c20 keep-alive: no socket errors, all 2xx" wrk_ok

resets() {
    "$MTCP_STAT" --dir "$REGIONS" --reset -p "$WORKER" >&2 || return 1
    stat_json -p "$WORKER" >"$WORK/after-reset.json"
    [[ "$(json_get "$WORK/after-reset.json" 'p["counters"]["passive_opens"]')" == 0 ]] || return 1
    for _ in 1 2 3; do in_peer 10 curl -sf -o /dev/null "http://$STACK_ADDR/index.html" || return 1; done
    sleep 0.5
    stat_json -p "$WORKER" >"$WORK/after-curl.json"
    local opens
    opens="$(json_get "$WORK/after-curl.json" 'p["counters"]["passive_opens"]')"
    echo "passive opens since the reset: $opens" >&2
    [[ "$opens" == 3 ]]
}
check "mtcp-stat --reset: counters from zero (three curls: passive_opens 3)" resets

kernel_socket() {
    on_stack 20 python6 python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(("::1", 0))
print(s.fileno(), flush=True)
time.sleep(4)' >"$WORK/python6.txt" 2>&1 &
    local spawned=$! pid="" fd
    netns_track_pid "$spawned"
    sleep 2
    pid="$(pgrep -f 'socket.AF_INET6, socket.SOCK_STREAM' | tail -1)"
    fd="$(grep -E '^[0-9]+$' "$WORK/python6.txt" | head -1)"  # (the EAL prints first on dpdk)
    [[ -n "$pid" && -n "$fd" ]] || return 1
    "$MTCP_STAT" --dir "$REGIONS" --sockets -p "$pid" >"$WORK/python6-sockets.txt" 2>&1
    cat "$WORK/python6-sockets.txt" >&2
    wait "$spawned" || true
    grep -q "fd $fd AF_INET6/stream: AF_INET6 bound to kernel IPv6 addresses" "$WORK/python6-sockets.txt"
}
check "a socket the kernel keeps (python3, AF_INET6 bound to ::1) is listed by mtcp-stat --sockets with why" \
    kernel_socket

killed() {
    local before
    before="$(stat_json -p "$WORKER" | python3 -c 'import json,sys; print(json.load(sys.stdin)["processes"][0]["counters"]["frames_in"])')"
    kill -9 "$WORKER"
    netns_wait_for 50 bash -c "! kill -0 $WORKER 2>/dev/null" || return 1
    stat_json -p "$WORKER" >"$WORK/killed.json" || return 1
    "$MTCP_STAT" --dir "$REGIONS" -p "$WORKER" >&2
    local state frames
    state="$(json_get "$WORK/killed.json" 'p["state"]')"
    frames="$(json_get "$WORK/killed.json" 'p["counters"]["frames_in"]')"
    echo "after kill -9: state $state, frames_in $frames (before the kill $before)" >&2
    [[ "$state" == dead && "$frames" -ge "$before" && "$frames" -gt 0 ]]
}
check "kill -9 of the worker: mtcp-stat -p $WORKER still shows its last counters (dead)" killed
cleaned() {
    "$MTCP_STAT" --dir "$REGIONS" --clean >&2 || return 1
    ! "$MTCP_STAT" --dir "$REGIONS" -p "$WORKER" >/dev/null 2>&1 && "$MTCP_STAT" --dir "$REGIONS" -p "$MASTER" >/dev/null
}
check "mtcp-stat --clean removes the dead worker's region and keeps the master's" cleaned
# quits DIR  nginx -s quit, and the master gone.
quits() {
    timeout 10 nginx -c "$1/nginx.conf" -p "$1" -s quit >&2 2>&1 &&
        netns_wait_for 100 bash -c "! kill -0 $MASTER 2>/dev/null"
}
check "nginx -s quit" quits "$N"
check "a normal exit removes the master's region" bash -c "! test -e $REGIONS/mtcp-stats.$MASTER"

# Capture of a download with faults: each process and instance its own file (%p, %i).
C="$WORK/nginx-capture"
nginx_site "$C" 1
head -c 10485760 /dev/urandom >"$C/www/10m.bin"
chmod 644 "$C/www/10m.bin"
STACK_EXTRA_ENV=(MTCP_STATS_DIR="$REGIONS" MTCP_STATS_KEEP=1 MTCP_PCAP="$WORK/capture/nginx-%p-%i.pcapng"
    MTCP_IMPAIR_TX="loss=0.01,seed=5")
check "nginx starts with MTCP_PCAP and 1% loss on transmit" nginx_up "$C" "$WORK/nginx-capture-start.log"
MASTER="$(cat "$C/nginx.pid" 2>/dev/null || true)"
[[ -n "$MASTER" ]] && netns_track_pid "$MASTER"
check "the master runs its worker" netns_wait_for 50 worker_up
WORKER="$(pgrep -P "$MASTER" | head -1)"
download() {
    in_peer 60 curl -sf -o "$WORK/10m.out" "http://$STACK_ADDR/10m.bin" && same_file "$C/www/10m.bin" "$WORK/10m.out"
}
check "10 MiB download with 1% loss on the stack's transmit side: byte-exact" download
check "nginx -s quit (the capture written to its end)" quits "$C"
CAPTURE="$WORK/capture/nginx-$WORKER-0.pcapng"
captured() {
    ls -l "$WORK/capture" >&2
    [[ -s "$CAPTURE" ]] || return 1
    local frames malformed bad retransmits stack
    frames="$(tshark -r "$CAPTURE" 2>/dev/null | wc -l)"
    malformed="$(tshark -r "$CAPTURE" -Y '_ws.malformed' 2>/dev/null | wc -l)"
    # A computed 0 sent as 0xffff is one's-complement zero too: Linux's skb_checksum_help
    # writes it so (CSUM_MANGLED_0) in about one frame of 65,536; tshark calls it bad.
    bad="$(tshark -r "$CAPTURE" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
        -Y '(ip.checksum.status == 0 || tcp.checksum.status == 0) && !(tcp.checksum == 0xffff && tcp.checksum_calculated == 0)' \
        2>/dev/null | wc -l)"
    # Wireshark calls a segment sent again sooner than an RTT after the first copy out-of-order.
    retransmits="$(tshark -r "$CAPTURE" -Y '(tcp.analysis.retransmission || tcp.analysis.out_of_order) && tcp.srcport == 80' 2>/dev/null | wc -l)"
    stack="$(stat_json -p "$WORKER" | python3 -c 'import json,sys; print(json.load(sys.stdin)["processes"][0]["counters"]["retransmits"])')"
    echo "capture: $frames frames, $malformed malformed, $bad with bad checksums; tshark retransmissions $retransmits, the stack's counter $stack" >&2
    ((frames > 7000 && malformed == 0 && bad == 0 && stack > 0)) || return 1
    # tshark judges by sequence numbers and times; within a tenth of the stack's own count.
    ((retransmits * 10 >= stack * 9 && retransmits * 10 <= stack * 11))
}
check "tshark reads the capture: no malformed frames, no bad checksums, the stack's retransmissions" captured
"$MTCP_STAT" --dir "$REGIONS" --clean >/dev/null 2>&1 || true
compat_finish
