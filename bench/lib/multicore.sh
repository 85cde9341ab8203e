# shellcheck shell=bash
# Suite 8, multicore: 1 and 2 server workers (or instances), kernel vs stack, side by side.
#
#   nginx rows: Debian's nginx, worker_processes W, `worker_cpu_affinity auto` (worker i on
#     CPU i) on both sides, 64-byte file, wrk -tW -c MC_CONCURRENCY, keep-alive and
#     `Connection: close`, from the peer namespace.
#     kernel: nginx and wrk on the kernel, `listen 80 reuseport` (the kernel spreads new
#       connections over the workers' own listeners), on a veth pair of its own with the
#       offloads a fresh veth has (TSO/GSO and checksum offload on, GRO off): the kernel as
#       users run it.
#     stack: nginx under mtcp-run (one stack instance per process: each worker has its own,
#       the kernel's BPF flow steering spreads a listening port's new flows over the workers),
#       wrk under mtcp-run --cores W in the other namespace (W stack instances for its W
#       threads).
#   httpd rows: mtcp-httpd --cores W (the stack's own API, W instances, thread i pinned to
#     CPU i) with mtcp-load --cores W, against the kernel pair's nginx (W workers, as above)
#     with wrk -tW, as suite 4 (httpd) does.
# Clients are not pinned. Servers start afresh for every case of every round, on both sides
# (see suite_both: a server on the stack that still holds an earlier client's flows, in
# TIME-WAIT after `Connection: close` or established after a keep-alive client exited, stalls
# the new client's SYNs that reuse their ports; measured: half the rate of a fresh server).
# Every run records in its note the whole machine's busy time (/proc/stat: machine_cpu_s=...),
# the CPUs the server's threads may use (pinning=...) and how busy the machine was with the
# servers idle just before (background_busy=...%: other work skews every figure); the server
# tree's utime+stime (every nginx process, /proc/PID/stat) is the server CPU column.
# Uses MULTICORE_WORKERS, MC_MODES, MC_CONCURRENCY, DURATION, ROUNDS, BIN, WWW, BENCH_TMP.

# mc_machine_ticks  prints the whole machine's busy ticks (every CPU: user, nice, system, irq,
# softirq; without CONFIG_IRQ_TIME_ACCOUNTING the tasks' utime+stime add up to the same), its
# steal ticks (a VM: time the host gave to others) and the wall clock.
mc_machine_ticks() {
    awk -v now="$EPOCHREALTIME" '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $9, now; exit }' /proc/stat
}

# mc_machine_delta BEFORE AFTER  prints "BUSY_S STEAL_S WALL_S" between two mc_machine_ticks.
mc_machine_delta() {
    awk -v a="$1" -v b="$2" -v hz="$BENCH_CLK_TCK" 'BEGIN { split(a, x, " "); split(b, y, " ")
        printf "%.3f %.3f %.3f\n", (y[1] - x[1]) / hz, (y[2] - x[2]) / hz, y[3] - x[3] }'
}

# mc_background  prints how busy the machine is while no load runs (servers up and idle),
# in percent of all CPUs over 0.3 s: other work on the machine skews every figure here.
mc_background() {
    local a b
    # Busy and total ticks (total: busy + idle + iowait).
    a="$(awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6 + $9; exit }' /proc/stat)"
    sleep 0.3
    b="$(awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6 + $9; exit }' /proc/stat)"
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        t = y[2] - x[2]; printf "%.0f\n", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# mc_others  prints "PID TICKS" (utime+stime) for every process that is neither the
# benchmark's (the run's tree, its ancestors) nor a kernel thread. One pass over /proc (cat
# goes on past a process that just ended; mawk would stop at it).
mc_others() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v self="$$" '
        {
            line = $0; sub(/\).*/, "", line); split(line, head, " ")  # "PID (comm"
            rest = $0; sub(/.*\) /, "", rest); n = split(rest, f, " ")
            pid = head[1]; ppid[pid] = f[2]; ticks[pid] = f[12] + f[13]
            kids[f[2]] = kids[f[2]] " " pid
        }
        END {
            queue[1] = self; qn = 1
            for (q = 1; q <= qn; q++) {
                p = queue[q]; ours[p] = 1
                k = split(kids[p], list, " ")
                for (i = 1; i <= k; i++) if (!(list[i] in ours)) queue[++qn] = list[i]
            }
            for (p = self; p != "" && p != 0 && !(("a" p) in ours); p = ppid[p]) { ours[p] = 1; ours["a" p] = 1 }
            for (p in ticks) if (!(p in ours) && p != 2 && ppid[p] != 2) print p, ticks[p]
        }'
}

# mc_others_seconds BEFORE AFTER  CPU seconds other processes used between two mc_others.
mc_others_seconds() {
    awk -v hz="$BENCH_CLK_TCK" 'NR == FNR { before[$1] = $2; next }
        { d = $2 - ($1 in before ? before[$1] : 0); if (d > 0) total += d }
        END { printf "%.3f\n", total / hz }' <(echo "$1") <(echo "$2")
}

# mc_quiet  sets MC_BACKGROUND to mc_background, waiting first (up to MC_QUIET_WAIT seconds,
# 0.3 s at a time) for other work on the machine to fall below 10%: the machine is shared.
mc_quiet() {
    local deadline=$((SECONDS + ${MC_QUIET_WAIT:-0}))
    MC_BACKGROUND="$(mc_background)"
    while ((MC_BACKGROUND >= 10 && SECONDS < deadline)); do
        MC_BACKGROUND="$(mc_background)"
    done
}

# mc_veth_defaults NS IF  gives a veth end back the features a fresh veth has on this kernel
# (ethtool -k of a new pair: rx/tx checksum, scatter-gather, TSO, GSO on; GRO off;
# gso_max_segs 65535), which netns.sh turned off.
mc_veth_defaults() {
    local feature
    for feature in rx tx sg tso gso; do
        ip netns exec "$1" ethtool -K "$2" "$feature" on >/dev/null 2>&1 || true
    done
    ip netns exec "$1" ethtool -K "$2" gro off >/dev/null 2>&1 || true
    ip netns exec "$1" ip link set dev "$2" gso_max_segs 65535 >/dev/null 2>&1 || true
}

# mc_veth_features NS IF  prints the offloads in force, e.g. "tso on, gso on, gro off, ...".
mc_veth_features() {
    local segs
    segs="$(ip -n "$1" -d link show dev "$2" | grep -o 'gso_max_segs [0-9]*' | head -n 1)"
    ip netns exec "$1" ethtool -k "$2" 2>/dev/null | awk -v segs="$segs" '
        /^tx-checksumming:/ { tx = $2 } /^rx-checksumming:/ { rx = $2 }
        /^tcp-segmentation-offload:/ { tso = $2 } /^generic-segmentation-offload:/ { gso = $2 }
        /^generic-receive-offload:/ { gro = $2 }
        END { printf "tx-csum %s, rx-csum %s, tso %s, gso %s, gro %s, %s\n", tx, rx, tso, gso, gro, segs }'
}

# mc_topology  makes the suite's own two veth pairs (unique names from netns.sh, removed by
# netns_cleanup with the rest):
#   MC_K_*  kernel to kernel, veth's default offloads (whatever --kernel-offloads says)
#   MC_B_*  both ends on the stack (offloads off, as every stack pair)
mc_topology() {
    [[ -n "${MC_K_SRV_NS:-}" ]] && return 0
    netns_setup --stack-ns benchm >/dev/null || return 1
    netns_stack_kernel_address || return 1
    MC_K_SRV_NS="$STACK_NS" MC_K_SRV_IF="$STACK_IF" MC_K_SRV_ADDR="$STACK_ADDR"
    MC_K_CLI_NS="$PEER_NS" MC_K_CLI_IF="$PEER_IF"
    mc_veth_defaults "$MC_K_SRV_NS" "$MC_K_SRV_IF"
    mc_veth_defaults "$MC_K_CLI_NS" "$MC_K_CLI_IF"
    netns_setup_stack_pair benchm >/dev/null || return 1
    MC_B_SRV_NS="$STACK_A_NS" MC_B_SRV_IF="$STACK_A_IF" MC_B_SRV_ADDR="$STACK_A_ADDR"
    MC_B_CLI_NS="$STACK_B_NS" MC_B_CLI_IF="$STACK_B_IF" MC_B_CLI_ADDR="$STACK_B_ADDR"
    ip netns exec "$MC_K_CLI_NS" ping -c 1 -W 2 "$MC_K_SRV_ADDR" >/dev/null || return 1
    bench_log "multicore: kernel pair $(mc_veth_features "$MC_K_SRV_NS" "$MC_K_SRV_IF") (server end)," \
        "$(mc_veth_features "$MC_K_CLI_NS" "$MC_K_CLI_IF") (client end)"
    echo "multicore kernel pair: $(mc_veth_features "$MC_K_SRV_NS" "$MC_K_SRV_IF")" >>"$WORK/machine.txt"
    echo "multicore quiet wait: ${MC_QUIET_WAIT:-0}" >>"$WORK/machine.txt"
}

# mc_pinning PID  prints the CPUs each process of PID's tree may run on, its threads
# separated by '/': e.g. "nginx:0-1 nginx:0/0-1 nginx:1/0-1" (master; workers with a helper).
mc_pinning() {
    local pid tid comm list out=""
    while read -r pid; do
        comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || continue
        list=""
        for tid in $(ls "/proc/$pid/task" 2>/dev/null | sort -n); do
            list+="${list:+/}$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$pid/task/$tid/status" 2>/dev/null)"
        done
        out+="${out:+ }$comm:$list"
    done < <(bench_descendants "$1")
    echo "$out"
}

# mc_pin_workers MASTER  pins every thread of each nginx worker to the CPU nginx pinned the
# worker's main thread to (worker_cpu_affinity sets only the calling thread's mask: threads the
# library started in the worker before that, such as its helper, keep the whole machine).
mc_pin_workers() {
    local pid cpus i pinned
    # worker_cpu_affinity auto gives each worker one CPU: wait (2 s at most) until all have it.
    for ((i = 0; i < 20; i++)); do
        pinned=1
        while read -r pid; do
            [[ "$pid" == "$1" ]] && continue
            cpus="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)"
            [[ "$cpus" =~ ^[0-9]+$ ]] || pinned=0
        done < <(bench_descendants "$1")
        ((pinned)) && break
        sleep 0.1
    done
    while read -r pid; do
        [[ "$pid" == "$1" ]] && continue
        cpus="$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)"
        [[ -n "$cpus" ]] && taskset -apc "$cpus" "$pid" >/dev/null 2>&1
    done < <(bench_descendants "$1")
    return 0
}

# mc_words WORD...  prints a command line, quoting the words that hold blanks.
mc_words() {
    local word out=""
    for word in "$@"; do
        [[ "$word" == *[[:space:]]* ]] && word="'$word'"
        out+="${out:+ }$word"
    done
    echo "$out"
}

# mc_start_nginx NAME NS WORKERS REUSEPORT [MTCP_RUN_WORDS...]  starts nginx in NS with
# worker_cpu_affinity auto (and `listen ... reuseport` when REUSEPORT is 1); sets MC_NGINX_PID
# and MC_NGINX_DIR.
mc_start_nginx() {
    local name="$1" ns="$2" workers="$3" reuseport="$4"
    shift 4
    prepare_nginx "$name" "$workers" 4096
    MC_NGINX_DIR="$NGINX_DIR"
    local conf="$MC_NGINX_DIR/nginx.conf"
    sed -i "s/^worker_processes $workers;\$/&\nworker_cpu_affinity auto;/" "$conf"
    ((reuseport)) && sed -i 's/^\( *listen 80 default_server backlog=4096\);/\1 reuseport;/' "$conf"
    if ! grep -q '^worker_cpu_affinity auto;' "$conf" ||
        { ((reuseport)) && ! grep -q 'listen 80 .*reuseport;' "$conf"; }; then
        bench_log "multicore: could not adapt $conf (bench_write_nginx_conf changed?)"
        return 1
    fi
    launch_nginx "$ns" "$@"
    MC_NGINX_PID=$NGINX_PID
}

# mc_wait_workers PID COUNT  waits up to 5 s for COUNT children of the nginx master PID.
mc_wait_workers() {
    local i
    for ((i = 0; i < 50; i++)); do
        (($(bench_descendants "$1" | wc -l) >= $2 + 1)) && return 0
        sleep 0.1
    done
    bench_log "multicore: nginx $1 has not $2 worker(s) after 5 s"
    return 1
}

# mc_stop PID...  stops servers (SIGTERM: nginx's fast shutdown, mtcp-httpd's stop), all at
# once, then waits for each.
mc_stop() {
    local pid
    kill -TERM "$@" 2>/dev/null || true
    for pid in "$@"; do bench_stop "$pid" 30 TERM; done
}

# mc_start_kernel_nginx NAME WORKERS  nginx on the kernel pair; sets MC_KPID, MC_KPIN.
mc_start_kernel_nginx() {
    mc_start_nginx "$1" "$MC_K_SRV_NS" "$2" 1 || return 1
    MC_KPID="$MC_NGINX_PID"
    local dir="$MC_NGINX_DIR"
    bench_wait_http ip netns exec "$MC_K_CLI_NS" "http://$MC_K_SRV_ADDR/64.bin" ||
        server_failed "nginx (kernel, $2 workers)" "$MC_KPID" "$dir/out.log" "$dir/error.log" || return 1
    mc_wait_workers "$MC_KPID" "$2" || return 1
    mc_pin_workers "$MC_KPID"
    MC_KPIN="$(mc_pinning "$MC_KPID")"
}

# mc_start_stack_nginx NAME WORKERS  nginx under mtcp-run on the stack pair; MC_SPID, MC_SPIN.
mc_start_stack_nginx() {
    # shellcheck disable=SC2046 # mtcp-run's words
    mc_start_nginx "$1" "$MC_B_SRV_NS" "$2" 0 $(stack_run "$MC_B_SRV_IF" "$MC_B_SRV_ADDR") || return 1
    MC_SPID="$MC_NGINX_PID"
    local dir="$MC_NGINX_DIR"
    wait_stack_http "$MC_B_CLI_NS" "$MC_B_CLI_IF" "$MC_B_CLI_ADDR" "http://$MC_B_SRV_ADDR/64.bin" ||
        server_failed "nginx (stack, $2 workers)" "$MC_SPID" "$dir/out.log" "$dir/error.log" || return 1
    mc_wait_workers "$MC_SPID" "$2" || return 1
    mc_pin_workers "$MC_SPID"
    MC_SPIN="$(mc_pinning "$MC_SPID")"
}

# mc_start_httpd CORES ROUND  mtcp-httpd --cores CORES on the stack pair, instance thread i
# pinned to CPU i (as nginx's worker_cpu_affinity auto); sets MC_SPID, MC_SPIN.
mc_start_httpd() {
    local cores="$1" round="$2" log i tid
    log="$BENCH_TMP/mc-httpd-$cores-$round.log"
    local cpus="0-$((cores - 1))"
    ip netns exec "$MC_B_SRV_NS" taskset -c "$cpus" "$BIN/mtcp-httpd" --iface "$MC_B_SRV_IF" \
        --addr "$MC_B_SRV_ADDR/24" --root "$WWW" --port 80 --cores "$cores" --duration 900 >"$log" 2>&1 &
    MC_SPID=$!
    netns_track_pid "$MC_SPID"
    SUITE_PIDS+=("$MC_SPID")
    bench_command "multicore httpd server ($cores core(s), stack): ip netns exec MC_B_SRV_NS taskset -c $cpus $BIN/mtcp-httpd --iface IF --addr $MC_B_SRV_ADDR/24 --root WWW --port 80 --cores $cores (then instance thread i: taskset -pc i)"
    for ((i = 0; i < 100; i++)); do
        (($(grep -c serving "$log" 2>/dev/null) >= cores)) && break
        kill -0 "$MC_SPID" 2>/dev/null || break
        sleep 0.1
    done
    (($(grep -c serving "$log" 2>/dev/null) >= cores)) ||
        server_failed "mtcp-httpd --cores $cores" "$MC_SPID" "$log" || return 1
    if ((cores > 1)); then
        # One thread per instance besides the main thread (which only joins them).
        local -a tids=()
        for tid in $(ls "/proc/$MC_SPID/task" | sort -n); do
            [[ "$tid" == "$MC_SPID" ]] || tids+=("$tid")
        done
        if ((${#tids[@]} == cores)); then
            for ((i = 0; i < cores; i++)); do
                taskset -pc "$((i % $(nproc)))" "${tids[$i]}" >/dev/null
            done
        else
            bench_log "multicore: mtcp-httpd has ${#tids[@]} threads besides main, not $cores: left on CPUs $cpus"
        fi
    fi
    MC_SPIN="$(mc_pinning "$MC_SPID")"
}

# mc_record CASE SIDE ROUND WORKERS RPS WORK CLIENT_CPU SERVER_TICKS MACHINE_DELTA ERRORS NOTE PIN
# MACHINE_DELTA is mc_machine_delta's "BUSY_S STEAL_S WALL_S" and mc_others_seconds'.
mc_record() {
    local busy steal wall others
    read -r busy steal wall others <<<"$9"
    local note="machine_cpu_s=$busy; steal_s=$steal; wall_s=$wall; cpus=$(nproc); others_cpu_s=$others"
    note+="; background_busy=${MC_BACKGROUND:-?}%; pinning=${12}${11:+; ${11}}"
    bench_record multicore "$1" "$2" "$3" "$MC_CONCURRENCY" "$4" "$5" "req/s" "$6" "$7" \
        "$(bench_ticks_to_seconds "$8")" "${10}" "$note"
}

# mc_wrk CASE SIDE ROUND WORKERS SERVER_PID URL MODE CLIENT_WORDS...  one wrk run with
# WORKERS threads (MODE keepalive or close).
mc_wrk() {
    local case="$1" side="$2" round="$3" workers="$4" server="$5" url="$6" mode="$7"
    shift 7
    local out="$WORK/multicore-$case-$side-$round-$workers.wrk" cpufile="$WORK/cpu.$$"
    local -a header=()
    [[ "$mode" == close ]] && header=(-H "Connection: close")
    local -a cmd=("$@" wrk -t"${BENCH_MC_WRK_THREADS:-$workers}" -c"$MC_CONCURRENCY" -d"${DURATION}s" --timeout 1s "${header[@]}" "$url")
    bench_command "multicore $case, $workers worker(s) ($side): $(mc_words "${cmd[@]}")"
    local status
    mc_measure "$out" "$cpufile" "$server" "${cmd[@]}"
    status=$MC_STATUS
    local rps requests errors note=""
    read -r rps requests errors <<<"$(bench_wrk_parse "$out")"
    if ((status != 0)); then
        note="wrk exit $status"
        errors=$((errors + 1))
    fi
    kill -0 "$server" 2>/dev/null || { note+="${note:+; }server died"; errors=$((errors + 1)); }
    ((errors)) && note+="${note:+; }$(grep -E 'Socket errors|Non-2xx' "$out" | tr '\n' ' ')"
    mc_record "$case" "$side" "$round" "$workers" "$rps" "$requests" "$(cat "$cpufile" 2>/dev/null || echo NA)" \
        "$MC_SERVER_TICKS" "$MC_MACHINE" "$errors" "$note" "$MC_PIN"
}

# mc_measure OUT CPUFILE SERVER_PID COMMAND...  runs one timed load command and measures around
# it: MC_STATUS (its exit status), MC_SERVER_TICKS (the server tree's CPU ticks), MC_MACHINE
# (the machine's busy time and the other work during it) and MC_PIN (the server's pinning).
mc_measure() {
    local out="$1" cpufile="$2" server="$3"
    shift 3
    local before after mbefore mafter others
    MC_STATUS=0
    before="$(bench_cpu_ticks "$server")"
    others="$(mc_others)"
    mbefore="$(mc_machine_ticks)"
    bench_timed "$out" "$cpufile" $((DURATION + 20)) "$@" || MC_STATUS=$?
    mafter="$(mc_machine_ticks)"
    others="$(mc_others_seconds "$others" "$(mc_others)")"
    after="$(bench_cpu_ticks "$server")"
    MC_SERVER_TICKS=$((after - before))
    MC_MACHINE="$(mc_machine_delta "$mbefore" "$mafter") $others"
    MC_PIN="$(mc_pinning "$server")"
}

# mc_load CASE ROUND CORES SERVER_PID MODE  one mtcp-load --cores CORES run (stack side).
mc_load() {
    local case="$1" round="$2" cores="$3" server="$4" mode="$5"
    local out="$WORK/multicore-$case-stack-$round-$cores.load" cpufile="$WORK/cpu.$$"
    local -a per=(--connections 100000000 --requests-per-connection 1)
    [[ "$mode" == keepalive ]] && per=(--connections "$MC_CONCURRENCY" --requests-per-connection 1000000000)
    local -a cmd=(ip netns exec "$MC_B_CLI_NS" "$BIN/mtcp-load" --iface "$MC_B_CLI_IF" --addr "$MC_B_CLI_ADDR/24"
        --cores "$cores" --server "$MC_B_SRV_ADDR" --path /64.bin --concurrency "$MC_CONCURRENCY"
        "${per[@]}" --duration "$DURATION")
    bench_command "multicore $case, $cores core(s) (stack): ${cmd[*]}"
    local status
    mc_measure "$out" "$cpufile" "$server" "${cmd[@]}"
    status=$MC_STATUS
    local line completed non2xx errors seconds rps note=""
    line="$(grep '^mtcp-load: completed=' "$out" | tail -n 1)"
    completed="$(sed -n 's/^mtcp-load: completed=\([0-9]*\).*/\1/p' <<<"$line")"
    non2xx="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
    errors="$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")"
    seconds="$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")"
    if [[ -z "$line" || -z "$completed" || -z "$seconds" ]]; then
        rps=NA completed=0 errors=1
        note="no result line (exit $status): $(tail -n 2 "$out" | tr '\n' ' ')"
    else
        rps="$(awk -v c="$completed" -v s="$seconds" 'BEGIN { printf "%.2f", c / s }')"
        errors=$((${errors:-1} + ${non2xx:-1}))
        ((errors)) && note="non2xx=$non2xx; $(grep -o 'errors=.*' <<<"$line" | cut -c1-200)"
        if ((status != 0)); then
            errors=$((errors + 1))
            note+="${note:+; }mtcp-load exit $status"
        fi
    fi
    kill -0 "$server" 2>/dev/null || { note+="${note:+; }server died"; errors=$((errors + 1)); }
    mc_record "$case" stack "$round" "$cores" "$rps" "$completed" "$(cat "$cpufile" 2>/dev/null || echo NA)" \
        "$MC_SERVER_TICKS" "$MC_MACHINE" "$errors" "$note" "$MC_PIN"
}

suite_multicore() {
    bench_log "suite multicore: nginx (1, 2 workers, pinned) both ends on the kernel (reuseport) vs both" \
        "under the library; mtcp-httpd --cores 1, 2 vs the same kernel nginx"
    mc_topology || return 1
    local workers round mode
    for workers in "${MULTICORE_WORKERS[@]}"; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for mode in "${MC_MODES[@]}"; do
                # nginx against nginx; fresh servers for each case (see suite_both).
                mc_start_kernel_nginx "mck-$workers-$mode-$round" "$workers" || return 1
                mc_start_stack_nginx "mcs-$workers-$mode-$round" "$workers" || return 1
                mc_quiet
                bench_log "multicore: nginx $workers worker(s), $mode, pinning: kernel $MC_KPIN; stack" \
                    "$MC_SPIN; machine busy while idle: $MC_BACKGROUND%"
                mc_wrk "nginx-$mode" kernel "$round" "$workers" "$MC_KPID" \
                    "http://$MC_K_SRV_ADDR/64.bin" "$mode" ip netns exec "$MC_K_CLI_NS"
                # shellcheck disable=SC2046 # mtcp-run's words
                mc_wrk "nginx-$mode" stack "$round" "$workers" "$MC_SPID" \
                    "http://$MC_B_SRV_ADDR/64.bin" "$mode" ip netns exec "$MC_B_CLI_NS" \
                    $(stack_run "$MC_B_CLI_IF" "$MC_B_CLI_ADDR" --cores "$workers")
                mc_stop "$MC_KPID" "$MC_SPID"
            done
            for mode in "${MC_MODES[@]}"; do
                # mtcp-httpd against the same kernel nginx.
                mc_start_kernel_nginx "mchk-$workers-$mode-$round" "$workers" || return 1
                mc_start_httpd "$workers" "$mode-$round" || return 1
                mc_quiet
                bench_log "multicore: httpd $workers core(s), $mode, pinning: kernel $MC_KPIN; stack" \
                    "$MC_SPIN; machine busy while idle: $MC_BACKGROUND%"
                mc_wrk "httpd-$mode" kernel "$round" "$workers" "$MC_KPID" \
                    "http://$MC_K_SRV_ADDR/64.bin" "$mode" ip netns exec "$MC_K_CLI_NS"
                mc_load "httpd-$mode" "$round" "$workers" "$MC_SPID" "$mode"
                mc_stop "$MC_KPID" "$MC_SPID"
            done
        done
    done
    echo "multicore load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/machine.txt"
    return 0
}
