#!/usr/bin/env bash
# nginx with several workers on the stack: every worker serves its share of new connections,
# and each process receives only its own flows' frames (kernel flow steering), so the frames
# all nginx processes receive together stay close to the frames on the wire.
#   for W in NGINX_WORKER_COUNTS (default "2 4"): nginx worker_processes W, wrk -c64
#   'Connection: close' from the peer for WORKERS_SECONDS (default 5): no socket errors, all 2xx;
#   each worker's passive opens (its MTCP_STATS line) within 35-65% of the total for 2 workers,
#   15-35% for 4; frames received by all nginx processes at most 1.2x the frames the peer sent.
# Then, with 2 workers and a 4 MB file served at limit_rate 1m:
#   nginx -s reload three times during a RELOAD_SECONDS (default 20) wrk run, keep-alive and
#   again with 'Connection: close': all 2xx, no connect errors or timeouts, read errors bounded
#   (see reload_clean for why some remain); a slow download started before
#   the reloads completes byte-exact (old workers finish their flows; nobody resets them);
#   kill -9 of the workers: their peers' keep-alive connections are reset at their next
#   request (within a second), and the workers the master restarts serve new requests.
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

for W in ${NGINX_WORKER_COUNTS:-2 4}; do
    N="$WORK/nginx-$W"
    nginx_site "$N" "$W"
    rm -rf "$WORK/stats"
    mkdir -p "$WORK/stats"
    chmod 1777 "$WORK/stats"  # workers run as www-data and write their own counters
    wire_before="$(in_peer 5 cat "/sys/class/net/$PEER_IF/statistics/tx_packets")"
    check "nginx worker_processes $W starts ($COMPAT_MODE)" nginx_up "$N" "$WORK/nginx-start.log"
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

N="$WORK/nginx-reload"
nginx_site "$N" 2
check "nginx (2 workers, limit_rate location) starts for the reload checks" nginx_up "$N" "$WORK/nginx-start.log"
MASTER="$(cat "$N/nginx.pid" 2>/dev/null || true)"
[[ -n "$MASTER" ]] && netns_track_pid "$MASTER"
RELOAD_SECONDS="${RELOAD_SECONDS:-20}"
# reload_clean OUTPUT LIMIT  wrk's report of a run across reloads: all 2xx, no connect errors or
# timeouts, and at most LIMIT read or write errors. Keep-alive: old workers close their idle
# connections when they stop, and a request wrk sends as that close arrives counts as an error;
# the kernel shows the same (181 in one run with COMPAT_MODE=kernel), so two per connection and
# reload are allowed. 'Connection: close': the kernel shows none. A stopping worker hands the
# connections it completed but never accepted to a worker that stays (TCPHandover; Linux's
# SO_REUSEPORT resets them without tcp_migrate_req): 0 errors measured on afpacket in 4 runs
# (before the handover 23-202), so at most 1 in 50,000 requests there; on dpdk, where new
# workers take longer to join, a few remain (6 of 172,944; before, 190): at most 1 in 1,000.
reload_clean() {
    local out="$1" limit="$2" read write requests
    requests="$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$out")"
    [[ -n "$requests" && "$requests" -gt 0 ]] || return 1
    ! grep -q 'Non-2xx or 3xx responses' "$out" || return 1
    grep -q 'Socket errors:' "$out" || return 0
    grep -Eq 'Socket errors: connect 0, read [0-9]+, write [0-9]+, timeout 0$' "$out" || return 1
    read="$(sed -n 's/.*read \([0-9]*\),.*/\1/p' "$out")"
    write="$(sed -n 's/.*write \([0-9]*\),.*/\1/p' "$out")"
    # -1: 1 in 1,000 requests; -2: 1 in 50,000.
    ((limit != -1)) || limit=$((requests / 1000))
    ((limit != -2)) || limit=$((requests / 50000))
    echo "errors seen by wrk across reloads: read $read, write $write of $requests requests (at most $limit)" >&2
    ((read + write <= limit))
}
reloads_under_load() {
    local name="$1" i
    local out="$WORK/wrk-reload-$name.txt"
    shift
    spawn_in_peer "$WORK/slow-$name.log" 60 curl -sS --fail --max-time 50 -o "$WORK/slow.bin" \
        "http://$STACK_ADDR/slow/4m.bin"
    local slow=$SPAWNED
    spawn_in_peer "$out" $((RELOAD_SECONDS + 30)) wrk -t 2 -c 64 -d "${RELOAD_SECONDS}s" "$@" \
        "http://$STACK_ADDR/index.html"
    local load=$SPAWNED
    for i in 1 2 3; do
        sleep $((RELOAD_SECONDS / 4))
        timeout 10 nginx -c "$N/nginx.conf" -p "$N" -s reload >&2 2>&1 || return 1
        echo "reload $i sent" >&2
    done
    wait "$load" || return 1
    cat "$out" >&2
    if [[ "$name" == keepalive ]]; then
        reload_clean "$out" $((2 * 64 * 3)) || return 1
    else
        if [[ "$COMPAT_BACKEND" == dpdk ]]; then
            reload_clean "$out" -1 || return 1
        else
            reload_clean "$out" -2 || return 1
        fi
    fi
    wait "$slow" || return 1
    same_file "$N/www/slow/4m.bin" "$WORK/slow.bin"
}
check "3 reloads during $RELOAD_SECONDS s of wrk (keep-alive) and a slow download: all 2xx, byte-exact" \
    reloads_under_load keepalive
check "3 reloads during $RELOAD_SECONDS s of wrk ('Connection: close') and a slow download: all 2xx, byte-exact" \
    reloads_under_load close -H 'Connection: close'
killed_workers() {
    cat >"$WORK/held.py" <<PY
import socket, sys, time
conns = []
for i in range(8):
    s = socket.create_connection(("$STACK_ADDR", 80), timeout=5)
    s.sendall(b"GET /index.html HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    if not s.recv(4096):
        sys.exit("no response")
    conns.append(s)
print("up", flush=True)
sys.stdin.readline()
start = time.time()
outcomes = []
for s in conns:
    try:
        s.sendall(b"GET /index.html HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        outcomes.append("data" if s.recv(4096) else "eof")
    except ConnectionResetError:
        outcomes.append("reset")
    except Exception as error:
        outcomes.append(type(error).__name__)
print("%s %.3f" % (",".join(outcomes), time.time() - start), flush=True)
PY
    local line workers
    coproc HELD { timeout 30 ip netns exec "$PEER_NS" python3 "$WORK/held.py"; }
    read -r -t 20 line <&"${HELD[0]}" && [[ "$line" == up ]] || return 1
    workers="$(pgrep -P "$MASTER" | tr '\n' ' ')"
    echo "kill -9 of workers $workers" >&2
    kill -9 $workers
    sleep 0.5
    echo go >&"${HELD[1]}"
    read -r -t 20 line <&"${HELD[0]}" || return 1
    echo "after the kill: $line" >&2
    [[ "$line" =~ ^(reset,){7}reset\ 0\. ]] || return 1
    netns_wait_for 50 bash -c "[[ \$(pgrep -c -P $MASTER) == 2 ]]" &&
        in_peer 20 curl -sS --fail --max-time 10 -o /dev/null "http://$STACK_ADDR/index.html"
}
if [[ "$COMPAT_MODE" == preload ]]; then
    check "kill -9 of the workers: their peers are reset at their next request; restarted workers serve" \
        killed_workers
fi
quits() {
    timeout 10 nginx -c "$N/nginx.conf" -p "$N" -s quit >&2 2>&1 &&
        netns_wait_for 100 bash -c "! kill -0 $MASTER 2>/dev/null"
}
check "nginx -s quit after the reloads: master and workers exit" quits
compat_dump_on_failure
compat_finish
