#!/usr/bin/env bash
# Soak (issue 15, item 6): nginx (2 workers) and redis-server on the stack for SOAK_MINUTES
# (default 30) of mixed traffic from the kernel's side, with faults on the link and nginx's
# workers reloaded; nothing may be lost and memory must stay flat. Not part of the test command
# (it takes half an hour); the figures of a run are in docs/SOAK.md.
#
#   bash compat-tests/soak.sh                     # 30 minutes
#   SOAK_MINUTES=5 bash compat-tests/soak.sh      # shorter
#   COMPAT_MODE=kernel bash compat-tests/soak.sh  # the same on the kernel (checks the script)
#
# Traffic, each loop until the end: wrk 'Connection: close' (short connections) and wrk
# keep-alive, 20 s rounds of 8 connections each; curl downloads of 10 MiB, each compared by
# SHA-256; compat-tests/tools/redis_roundtrip.py: SET and GET of random values up to 1 MiB,
# compared, a new connection every 50. The link: the tc impairment on the peer's veth in both
# directions (TCP: 0.5% loss, 0.5% duplication, 0.2% corruption). nginx -s reload every
# SOAK_RELOAD_SECONDS (60). Every SOAK_SAMPLE_SECONDS (60) a line: the traffic so far and the
# memory (VmRSS) of redis-server, of nginx's master and of all nginx processes.
#
# Passes when: no wrk connect error, timeout or non-2xx (read/write errors, which reloads cause on
# the kernel too, at most 1 in 1,000 requests), every download byte-exact, every redis value
# back as sent, every reload done, and redis-server's and nginx's master's VmRSS at the end
# within SOAK_RSS_GROWTH_KB (8 MiB) of their value after the first sample (warmed up).
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

MINUTES="${SOAK_MINUTES:-30}"
RELOAD_SECONDS="${SOAK_RELOAD_SECONDS:-60}"
SAMPLE_SECONDS="${SOAK_SAMPLE_SECONDS:-60}"
RSS_GROWTH_KB="${SOAK_RSS_GROWTH_KB:-8192}"
DURATION=$((MINUTES * 60))

compat_setup csoak
N="$WORK/nginx"
nginx_site "$N" 2
mkdir -p "$WORK/redis" "$WORK/out"
END=$((SECONDS + DURATION))

say "$MINUTES minutes, mode $COMPAT_MODE; nginx and redis-server at $STACK_ADDR"
stack_spawn "$WORK/redis-server.log" "$STACK_NS" "$STACK_IF" "$STACK_ADDR" $((DURATION + 300)) redis \
    redis-server --port 6379 --save '' --appendonly no --protected-mode no --dir "$WORK/redis"
REDIS_WRAPPER=$SPAWNED
check "redis-server starts" wait_tcp_port "$PEER_NS" "$STACK_ADDR" 6379
check "nginx starts" nginx_up "$N" "$WORK/nginx.log"
MASTER="$(cat "$N/nginx.pid" 2>/dev/null || echo 0)"
# timeout's child: ip netns exec and env exec redis-server.
REDIS_PID="$(pgrep -P "$REDIS_WRAPPER" -x redis-server || echo 0)"

# The link's faults, both directions (the filter on the peer's veth: egress reaches the stack,
# ingress comes from it).
impair_both() { impair_attach "$PEER_IF" 5 5 2 && impair_attach --ingress "$PEER_IF" 5 5 2; }
check "impairment on the link, both directions" impair_both

# rss PID  VmRSS in kB (0 when the process is gone).
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null || echo 0; }
nginx_rss() {
    local pid total=0 kb
    for pid in $MASTER $(pgrep -P "$MASTER"); do
        kb="$(rss "$pid")"
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# wrk_loop NAME ARGS...  20 s wrk rounds until the end; each report kept.
wrk_loop() {
    local name="$1" round=0
    shift
    while ((SECONDS + 20 <= END)); do
        round=$((round + 1))
        timeout -k 5 60 ip netns exec "$PEER_NS" wrk -t1 -c8 -d20s --timeout 10s "$@" \
            "http://$STACK_ADDR/1k.bin" >"$WORK/out/$name.$round" 2>&1 || true
    done
}

download_loop() {
    local round=0 ok=0 bad=0 want
    want="$(sha256sum <"$N/www/10m.bin" | cut -d' ' -f1)"
    while ((SECONDS + 30 <= END)); do
        round=$((round + 1))
        if timeout -k 5 120 ip netns exec "$PEER_NS" curl -sS --fail --max-time 100 \
            -o "$WORK/out/download.bin" "http://$STACK_ADDR/10m.bin" 2>>"$WORK/out/download.err" &&
            [[ "$(sha256sum <"$WORK/out/download.bin" | cut -d' ' -f1)" == "$want" ]]; then
            ok=$((ok + 1))
        else
            bad=$((bad + 1))
            echo "download $round: failed or different" >>"$WORK/out/download.err"
        fi
        echo "downloads=$round ok=$ok bad=$bad" >"$WORK/out/downloads"
    done
}

reload_loop() {
    local done=0 failed=0
    while ((SECONDS + RELOAD_SECONDS <= END)); do
        sleep "$RELOAD_SECONDS"
        if on_stack 30 nginx-reload nginx -c "$N/nginx.conf" -p "$N" -s reload >>"$WORK/out/reload.log" 2>&1; then
            done=$((done + 1))
        else
            failed=$((failed + 1))
        fi
        echo "reloads=$done failed=$failed" >"$WORK/out/reloads"
    done
}

# wrk_totals NAME  "requests hard soft" summed over the rounds' reports: hard errors are connect
# errors, timeouts, non-2xx and rounds without a report; soft are read and write errors, which
# a reload causes on the kernel too (nginx closes idle keep-alive connections as the old workers
# go; a request already on its way reads the close), allowed up to 1 in 1,000 requests.
wrk_totals() {
    local name="$1" final="${2:-0}" file requests=0 hard=0 soft=0 r fields
    for file in "$WORK/out/$name".*; do
        [[ -f "$file" ]] || continue
        # A round still running has written nothing yet.
        [[ -s "$file" || "$final" == 1 ]] || continue
        r="$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$file")"
        [[ -n "$r" ]] || hard=$((hard + 1))
        requests=$((requests + ${r:-0}))
        fields="$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$file")"
        if [[ -n "$fields" ]]; then
            read -r c rd w t <<<"$fields"
            hard=$((hard + c + t))
            soft=$((soft + rd + w))
        fi
        r="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$file")"
        hard=$((hard + ${r:-0}))
    done
    echo "$requests $hard $soft"
}

wrk_loop close -H 'Connection: close' &
netns_track_pid $!
wrk_loop keepalive &
netns_track_pid $!
download_loop &
netns_track_pid $!
reload_loop &
netns_track_pid $!
spawn_in_peer "$WORK/out/redis.out" $((DURATION + 120)) python3 "$COMPAT_DIR/tools/redis_roundtrip.py" \
    --host "$STACK_ADDR" --seconds $((DURATION - 5))
REDIS_CLIENT=$SPAWNED

FIRST_REDIS=0 FIRST_MASTER=0
sample=0
printf '%-6s %-24s %-24s %-12s %-8s %-9s %-9s %-9s\n' second close:reqs/hard/soft keepalive:reqs/hard/soft downloads reloads redis-kB master-kB nginx-kB
while ((SECONDS < END)); do
    sleep "$SAMPLE_SECONDS"
    sample=$((sample + 1))
    read -r close_requests close_hard close_soft <<<"$(wrk_totals close)"
    read -r keep_requests keep_hard keep_soft <<<"$(wrk_totals keepalive)"
    r_kb="$(rss "$REDIS_PID")" m_kb="$(rss "$MASTER")" n_kb="$(nginx_rss)"
    if ((sample == 1)); then FIRST_REDIS=$r_kb FIRST_MASTER=$m_kb; fi
    printf '%-6s %-24s %-24s %-12s %-8s %-9s %-9s %-9s\n' "$((sample * SAMPLE_SECONDS))" \
        "$close_requests/$close_hard/$close_soft" "$keep_requests/$keep_hard/$keep_soft" \
        "$(sed 's/downloads=//; s/ ok=/:/; s/ bad=/:/' "$WORK/out/downloads" 2>/dev/null || echo -)" \
        "$(sed 's/reloads=//; s/ failed=/:/' "$WORK/out/reloads" 2>/dev/null || echo 0)" "$r_kb" "$m_kb" "$n_kb"
done
wait "$REDIS_CLIENT" || true
sleep 25 # the last wrk rounds and download end on their own (each bounded)

read -r close_requests close_hard close_soft <<<"$(wrk_totals close 1)"
read -r keep_requests keep_hard keep_soft <<<"$(wrk_totals keepalive 1)"
say "short connections: $close_requests requests, $close_hard connect/timeout/non-2xx errors, $close_soft read/write errors"
say "keep-alive: $keep_requests requests, $keep_hard connect/timeout/non-2xx errors, $keep_soft read/write errors"
say "downloads: $(cat "$WORK/out/downloads" 2>/dev/null || echo none)"
say "reloads: $(cat "$WORK/out/reloads" 2>/dev/null || echo none)"
say "redis: $(cat "$WORK/out/redis.out")"
say "link faults (the peer's veth): $(impair_counters "$PEER_IF" 2>/dev/null || echo '?')"
check "short connections: requests, no connect/timeout/non-2xx error, read/write errors at most 1 in 1,000" \
    test "$close_requests" -gt 0 -a "$close_hard" -eq 0 -a $((close_soft * 1000)) -le "$close_requests"
check "keep-alive: requests, no connect/timeout/non-2xx error, read/write errors at most 1 in 1,000" \
    test "$keep_requests" -gt 0 -a "$keep_hard" -eq 0 -a $((keep_soft * 1000)) -le "$keep_requests"
check "downloads: all byte-exact" grep -Eq 'downloads=[1-9][0-9]* ok=[0-9]+ bad=0$' "$WORK/out/downloads"
check "reloads: all done" grep -Eq 'reloads=[1-9][0-9]* failed=0$' "$WORK/out/reloads"
check "redis: every value back as sent" grep -Eq 'rounds=[1-9][0-9]* bytes=[0-9]+ mismatches=0 errors=0' "$WORK/out/redis.out"
r_kb="$(rss "$REDIS_PID")" m_kb="$(rss "$MASTER")"
say "VmRSS after the first sample and at the end: redis-server $FIRST_REDIS -> $r_kb kB, nginx master $FIRST_MASTER -> $m_kb kB"
# A process that is gone has no memory to grow: still running is part of the check.
check "memory flat: redis-server still runs, within $RSS_GROWTH_KB kB" \
    test "$r_kb" -gt 0 -a $((r_kb - FIRST_REDIS)) -lt "$RSS_GROWTH_KB"
check "memory flat: nginx master still runs, within $RSS_GROWTH_KB kB" \
    test "$m_kb" -gt 0 -a $((m_kb - FIRST_MASTER)) -lt "$RSS_GROWTH_KB"
kill -QUIT "$MASTER" 2>/dev/null || true
compat_dump_on_failure
compat_finish
