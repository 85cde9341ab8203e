#!/usr/bin/env bash
# A SYN flood at nginx's listener while real connections run (issue 15, item 4), the kernel as
# the reference (COMPAT_MODE=kernel runs the same script without the library):
#   1. wrk with 50 keep-alive connections fetching 64 KiB for FLOOD_SECONDS (the baseline);
#   2. the same while compat-tests/tools/synflood.c sends SYNs from a raw socket in the peer
#      namespace as fast as it can, from spoofed hosts of the peer's /24 (which nobody answers
#      ARP for) to port 80, and curl makes new connections one after another.
# Checks: wrk under the flood has no socket errors (no keep-alive connection lost) and at least
# half the baseline's requests/s; every curl gets 200 (within 5 s: its SYN may be among the
# dropped ones once); the stack answered the flood with SYN cookies and the curl connections
# came in through them (its counters); nginx's workers' memory (VmRSS) grew by less than
# FLOOD_RSS_LIMIT_KB. The flood's rate and every figure are printed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cflood
N="$WORK/nginx"
nginx_site "$N" 2
sed -i 's/^http {/http {\n    keepalive_timeout 300s;\n    keepalive_requests 1000000;/' "$N/nginx.conf"
# The server and wrk on CPU 0, the flood on CPU 1 (with both runs pinned alike): what is
# measured is what the flood costs the server, not a core the flooder takes from it.
CPU_SERVER=() CPU_FLOOD=()
if (($(nproc) >= 2)); then
    sed -i 's/^worker_processes 2;/worker_processes 2;\nworker_cpu_affinity 01 01;/' "$N/nginx.conf"
    CPU_SERVER=(taskset -c 0) CPU_FLOOD=(taskset -c 1)
fi
SECONDS_EACH="${FLOOD_SECONDS:-5}"
RSS_LIMIT_KB="${FLOOD_RSS_LIMIT_KB:-65536}"
FLOOD="$WORK/synflood"
gcc -O2 -Wall -Wextra -Werror -o "$FLOOD" "$COMPAT_DIR/tools/synflood.c"

# wrk_rate OUTPUT  requests/s of a wrk report.
wrk_rate() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"; }

# workers_rss  the sum of VmRSS (kB) of nginx's workers.
workers_rss() {
    local master pid total=0 kb
    master="$(cat "$N/nginx.pid")"
    for pid in $(pgrep -P "$master"); do
        kb="$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || echo 0)"
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

keepalive_baseline() {
    nginx_up "$N" "$WORK/nginx.log" || return 1
    in_peer 60 "${CPU_SERVER[@]}" wrk -t1 -c50 -d"${SECONDS_EACH}s" --timeout 5s "http://$STACK_ADDR/64k.bin" >"$WORK/wrk-base.out" 2>&1 || true
    cat "$WORK/wrk-base.out"
    wrk_clean "$WORK/wrk-base.out"
}
check "baseline: wrk -c50 keep-alive 64 KiB for ${SECONDS_EACH} s, no errors" keepalive_baseline

under_flood() {
    local rss_before rss_after base rate
    rss_before="$(workers_rss)"
    # The flood runs from 1 s before wrk until after it (bounded in time and count).
    spawn_in_peer "$WORK/flood.out" $((SECONDS_EACH + 30)) "${CPU_FLOOD[@]}" "$FLOOD" "$STACK_ADDR" 80 "$PEER_ADDR/24" \
        $((SECONDS_EACH + 3)) 100000000 -x "$PEER_ADDR" -x "$STACK_ADDR"
    local flood=$SPAWNED
    sleep 1
    spawn_in_peer "$WORK/wrk-flood.out" 60 "${CPU_SERVER[@]}" wrk -t1 -c50 -d"${SECONDS_EACH}s" --timeout 5s "http://$STACK_ADDR/64k.bin"
    local wrk=$SPAWNED
    local i code curls=0 answered=0
    for ((i = 0; i < 10; i++)); do
        code="$(in_peer 10 curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$STACK_ADDR/index.html" || true)"
        curls=$((curls + 1))
        [[ "$code" == 200 ]] && answered=$((answered + 1))
        sleep 0.2
    done
    wait "$wrk" || true
    wait "$flood" || true
    rss_after="$(workers_rss)"
    cat "$WORK/flood.out" "$WORK/wrk-flood.out"
    base="$(wrk_rate "$WORK/wrk-base.out")"
    rate="$(wrk_rate "$WORK/wrk-flood.out")"
    echo "keep-alive requests/s: baseline ${base:-?}, under the flood ${rate:-?}" >&2
    echo "new connections under the flood: $answered of $curls answered" >&2
    echo "nginx workers' VmRSS: $rss_before kB before, $rss_after kB after (limit +$RSS_LIMIT_KB kB)" >&2
    FLOOD_LINE="$(cat "$WORK/flood.out")"
    local ok=1
    wrk_clean "$WORK/wrk-flood.out" || ok=0
    awk -v r="${rate:-0}" -v b="${base:-0}" 'BEGIN { exit !(b > 0 && r >= b / 2) }' || {
        echo "under half the baseline" >&2
        ok=0
    }
    ((answered == curls)) || ok=0
    ((rss_after - rss_before < RSS_LIMIT_KB)) || ok=0
    ((ok))
}
check "SYN flood from spoofed hosts: the 50 keep-alive connections lose nothing and keep at least half their rate, new connections answered, memory bounded" under_flood

# The counters nginx's processes wrote at exit (stack), or the kernel's (netstat).
cookies_used() {
    local master
    master="$(cat "$N/nginx.pid")"
    kill -QUIT "$master"
    netns_wait_for 100 bash -c "! kill -0 $master 2>/dev/null" || return 1
    local sent accepted
    if [[ "$COMPAT_MODE" == kernel ]]; then
        sent="$(in_stack_ns 10 nstat -az TcpExtSyncookiesSent | awk '/SyncookiesSent/ { print $2 }')"
        accepted="$(in_stack_ns 10 nstat -az TcpExtSyncookiesRecv | awk '/SyncookiesRecv/ { print $2 }')"
    else
        sent=0 accepted=0
        local file value
        for file in "$WORK"/stats/nginx.*; do
            value="$(sed -n 's/.* syn_cookies_sent=\([0-9]*\).*/\1/p' "$file")"
            sent=$((sent + ${value:-0}))
            value="$(sed -n 's/.* syn_cookies_accepted=\([0-9]*\).*/\1/p' "$file")"
            accepted=$((accepted + ${value:-0}))
        done
        grep -ho ' \(syn_cookies_rejected\|rx_drops\|arp_failures\|dropped\)=[0-9]*' "$WORK"/stats/nginx.* |
            sort | uniq -c | sort -rn | head -n 8 >&2 || true
    fi
    echo "flood: ${FLOOD_LINE:-?}; SYN cookies sent $sent, accepted $accepted" >&2
    ((sent > 0 && accepted > 0))
}
check "the flood was answered with SYN cookies and new connections came in through them" cookies_used
compat_dump_on_failure
compat_finish
