#!/usr/bin/env bash
# nginx with several workers on the stack: every worker serves its share of new connections,
# and each process receives only its own flows' frames (kernel flow steering), so the frames
# all nginx processes receive together stay close to the frames on the wire.
#   for W in NGINX_WORKER_COUNTS (default "2 4"): nginx worker_processes W, wrk -c64
#   'Connection: close' from the peer for WORKERS_SECONDS (default 5): no socket errors, all 2xx;
#   each worker's passive opens (its MTCP_STATS line) within 35-65% of the total for 2 workers,
#   15-35% for 4; frames received by all nginx processes at most 1.2x the frames the peer sent.
# In kernel mode only the wrk checks run (there are no stack counters).
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

compat_setup cwrk
SECONDS_EACH="${WORKERS_SECONDS:-5}"

# share_bounds W  prints the low and high percentage a worker's share must be within.
share_bounds() {
    case "$1" in
        2) echo "35 65" ;;
        4) echo "15 35" ;;
        *) echo "$((100 / $1 / 2)) $((100 * 3 / $1 / 2))" ;;
    esac
}

# stat_field FILE KEY  the value of KEY=... in a counter line.
stat_field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | head -1; }

for W in ${NGINX_WORKER_COUNTS:-2 4}; do
    N="$WORK/nginx-$W"
    nginx_config "$N" 80
    sed -i "s/^worker_processes auto;/worker_processes $W;/" "$N/nginx.conf"
    make_www "$N/www"
    rm -rf "$WORK/stats"
    mkdir -p "$WORK/stats"
    chmod 1777 "$WORK/stats"  # workers run as www-data and write their own counters
    wire_before="$(in_peer 5 cat "/sys/class/net/$PEER_IF/statistics/tx_packets")"
    start() {
        on_stack 30 nginx nginx -c "$N/nginx.conf" -p "$N" >"$WORK/nginx-start.log" 2>&1 &&
            netns_wait_for 100 test -s "$N/nginx.pid" && wait_tcp_port "$PEER_NS" "$STACK_ADDR" 80
    }
    check "nginx worker_processes $W starts ($COMPAT_MODE)" start
    MASTER="$(cat "$N/nginx.pid" 2>/dev/null || true)"
    [[ -n "$MASTER" ]] && netns_track_pid "$MASTER"
    workers_up() { [[ -n "$MASTER" && "$(pgrep -c -P "$MASTER")" == "$W" ]]; }
    check "master $MASTER runs $W workers" netns_wait_for 50 workers_up
    WORKER_PIDS=" $(pgrep -P "$MASTER" | tr '\n' ' ')"
    load() {
        in_peer $((SECONDS_EACH + 30)) wrk -t 2 -c 64 -d "${SECONDS_EACH}s" -H 'Connection: close' \
            "http://$STACK_ADDR/index.html" >"$WORK/wrk-$W.txt" 2>&1
        local status=$?
        cat "$WORK/wrk-$W.txt" >&2
        ((status == 0)) && wrk_clean "$WORK/wrk-$W.txt"
    }
    check "wrk -c64 ${SECONDS_EACH} s 'Connection: close' to $W workers: no socket errors, all 2xx" load
    quits() {
        timeout 10 nginx -c "$N/nginx.conf" -p "$N" -s quit >&2 2>&1 &&
            netns_wait_for 100 bash -c "! kill -0 $MASTER 2>/dev/null"
    }
    check "nginx -s quit: master and $W workers exit" quits
    wire_after="$(in_peer 5 cat "/sys/class/net/$PEER_IF/statistics/tx_packets")"
    [[ "$COMPAT_MODE" == preload ]] || continue

    shares() {
        local file total=0 opens=() low high pid
        read -r low high < <(share_bounds "$W")
        for file in "$WORK"/stats/nginx.*; do
            pid="${file##*.}"
            [[ "$WORKER_PIDS" == *" $pid "* ]] || continue
            opens+=("$(stat_field "$file" passive_opens)")
        done
        echo "passive opens per worker: ${opens[*]} (need $W values)" >&2
        ((${#opens[@]} == W)) || return 1
        for n in "${opens[@]}"; do total=$((total + n)); done
        ((total > 0)) || return 1
        for n in "${opens[@]}"; do
            local percent=$((n * 100 / total))
            echo "worker share $percent% (bounds $low-$high%)" >&2
            ((percent >= low && percent <= high)) || return 1
        done
    }
    check "each of $W workers took its share of new connections" shares
    frames() {
        local file sum=0 wire=$((wire_after - wire_before))
        for file in "$WORK"/stats/nginx.*; do
            echo "$(basename "$file"): frames_in=$(stat_field "$file" frames_in) $(grep -o 'steering=[a-z]*' "$file")" >&2
            sum=$((sum + $(stat_field "$file" frames_in)))
        done
        echo "frames received by all nginx processes: $sum; frames the peer sent: $wire" >&2
        ((wire > 0 && sum * 10 <= wire * 12))
    }
    check "frames received by all nginx processes at most 1.2x the frames on the wire" frames
done
compat_dump_on_failure
compat_finish
