#!/usr/bin/env bash
# A SYN flood at nginx's listener while real connections run (issue 15, item 4), the kernel as
# the reference (COMPAT_MODE=kernel runs the same script without the library):
#   1. 50 curl downloads at once of a 4 MB file that nginx sends at limit_rate 1m (long-lived
#      connections transferring at a known rate: about 4 s each), the baseline;
#   2. the same while compat-tests/tools/synflood.c sends SYNs from a raw socket in the peer
#      namespace as fast as it can, from spoofed hosts of the peer's /24 (which nobody answers
#      ARP for) to port 80, and curl makes new connections one after another.
# Checks: every download under the flood is byte-exact (none lost) and at least half as fast as
# the slowest of the baseline (none slowed below half); every new connection gets 200 (within
# 5 s: its SYN may be among the dropped ones once); the stack answered the flood with SYN cookies
# and the new connections came in through them (its counters; the kernel's nstat); nginx's
# workers' memory (VmRSS) grew by less than FLOOD_RSS_LIMIT_KB. The flood's rate and every
# figure are printed.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cflood
N="$WORK/nginx"
nginx_site "$N" 2
FLOWS=50
RSS_LIMIT_KB="${FLOOD_RSS_LIMIT_KB:-65536}"
FLOOD="$WORK/synflood"
gcc -O2 -Wall -Wextra -Werror -o "$FLOOD" "$COMPAT_DIR/tools/synflood.c"
mkdir -p "$WORK/dl"
chmod 777 "$WORK/dl"

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

# downloads NAME  FLOWS downloads of /slow/4m.bin at once from the peer; then DL_OK (byte-exact
# ones) and DL_SLOWEST (the lowest speed, bytes/s) of them.
downloads() {
    local name="$1" i speed code slowest="" ok=0
    rm -f "$WORK/dl/$name".*
    in_peer 90 bash -c "for i in \$(seq $FLOWS); do
        curl -s --max-time 60 -o '$WORK/dl/$name.'\$i.bin -w '%{http_code} %{speed_download}\n' \
            'http://$STACK_ADDR/slow/4m.bin' >'$WORK/dl/$name.'\$i.txt 2>&1 &
    done; wait"
    for ((i = 1; i <= FLOWS; i++)); do
        read -r code speed <"$WORK/dl/$name.$i.txt" || true
        speed="${speed%%.*}"
        if [[ "$code" == 200 ]] && cmp -s "$N/www/slow/4m.bin" "$WORK/dl/$name.$i.bin"; then ok=$((ok + 1)); fi
        if [[ -z "$slowest" || "${speed:-0}" -lt "$slowest" ]]; then slowest="${speed:-0}"; fi
    done
    DL_OK=$ok DL_SLOWEST="${slowest:-0}"
    echo "$name: $ok of $FLOWS downloads byte-exact, the slowest at $DL_SLOWEST bytes/s" >&2
}

baseline() {
    nginx_up "$N" "$WORK/nginx.log" || return 1
    downloads base
    BASE_SLOWEST=$DL_SLOWEST
    ((DL_OK == FLOWS && BASE_SLOWEST > 0))
}
check "baseline: $FLOWS downloads of 4 MB at limit_rate 1m at once, byte-exact" baseline

under_flood() {
    local rss_before rss_after
    rss_before="$(workers_rss)"
    # The flood runs from 1 s before the downloads until after them (bounded in time and count).
    spawn_in_peer "$WORK/flood.out" 40 "$FLOOD" "$STACK_ADDR" 80 "$PEER_ADDR/24" 8 100000000 \
        -x "$PEER_ADDR" -x "$STACK_ADDR"
    local flood=$SPAWNED
    sleep 1
    (downloads flood && echo "$DL_OK $DL_SLOWEST" >"$WORK/dl/flood.result") 2>"$WORK/dl/flood.log" &
    local transfers=$!
    local i code curls=0 answered=0
    for ((i = 0; i < 10; i++)); do
        code="$(in_peer 10 curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$STACK_ADDR/index.html" || true)"
        curls=$((curls + 1))
        [[ "$code" == 200 ]] && answered=$((answered + 1))
        sleep 0.2
    done
    wait "$transfers" || true
    wait "$flood" || true
    rss_after="$(workers_rss)"
    cat "$WORK/flood.out" "$WORK/dl/flood.log"
    read -r DL_OK DL_SLOWEST <"$WORK/dl/flood.result" || DL_OK=0 DL_SLOWEST=0
    echo "slowest download: baseline $BASE_SLOWEST bytes/s, under the flood $DL_SLOWEST bytes/s" >&2
    echo "new connections under the flood: $answered of $curls answered" >&2
    echo "nginx workers' VmRSS: $rss_before kB before, $rss_after kB after (limit +$RSS_LIMIT_KB kB)" >&2
    FLOOD_LINE="$(cat "$WORK/flood.out")"
    ((DL_OK == FLOWS && DL_SLOWEST * 2 >= BASE_SLOWEST && answered == curls && rss_after - rss_before < RSS_LIMIT_KB))
}
check "SYN flood from spoofed hosts: $FLOWS downloads all byte-exact and none below half the baseline's speed, new connections answered, memory bounded" under_flood

# The counters nginx's processes wrote at exit (stack), or the kernel's (netstat).
cookies_used() {
    nginx_quit "$N" || return 1
    local sent accepted
    if [[ "$COMPAT_MODE" == kernel ]]; then
        sent="$(in_stack_ns 10 nstat -az TcpExtSyncookiesSent | awk '/SyncookiesSent/ { print $2 }')"
        accepted="$(in_stack_ns 10 nstat -az TcpExtSyncookiesRecv | awk '/SyncookiesRecv/ { print $2 }')"
    else
        sent="$(stats_sum nginx syn_cookies_sent)"
        accepted="$(stats_sum nginx syn_cookies_accepted)"
        grep -ho ' \(syn_cookies_rejected\|rx_drops\|arp_failures\|dropped\)=[0-9]*' "$WORK"/stats/nginx.* |
            sort | uniq -c | sort -rn | head -n 8 >&2 || true
    fi
    echo "flood: ${FLOOD_LINE:-?}; SYN cookies sent $sent, accepted $accepted" >&2
    ((sent > 0 && accepted > 0))
}
check "the flood was answered with SYN cookies and new connections came in through them" cookies_used
compat_dump_on_failure
compat_finish
