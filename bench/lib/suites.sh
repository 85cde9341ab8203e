# shellcheck shell=bash
# The benchmark suites. Each runs its cases in turn; within a case, round by round, the kernel
# and the stack alternate, so slow drift of the machine's load hits both alike. Servers stay
# up for a suite (an idle stack sleeps in poll: it takes no CPU from the other side's run).
# Uses: BIN, WWW, BENCH_TMP, DURATION, ROUNDS and the K_/S_/B_ topology (topology.sh).

# --- Running a suite. ----------------------------------------------------------------------

# Servers a suite started; run_suite stops whatever is left when the suite ends.
SUITE_PIDS=()

# run_suite NAME  runs suite_NAME; a suite that cannot run (a server that does not start)
# is recorded as a failure and the next suite runs.
run_suite() {
    local name="$1" status=0
    SUITE_PIDS=()
    "suite_$name" || status=$?
    local pid
    for pid in "${SUITE_PIDS[@]}"; do bench_stop "$pid" 20; done
    SUITE_PIDS=()
    if ((status != 0)); then
        bench_record "$name" "(suite did not run)" stack 1 0 0 NA "-" 0 NA NA 1 "suite_$name failed (status $status)"
    fi
}

# server_failed WHAT PID FILES...  says that a server did not answer, with its logs; fails.
server_failed() {
    local what="$1" pid="$2"
    shift 2
    bench_log "$what did not answer$(kill -0 "$pid" 2>/dev/null || echo ' (it exited)'); its output:"
    tail -n 20 "$@" >&2 2>/dev/null || true
    return 1
}

# --- Servers. ------------------------------------------------------------------------------

# mtcp-run's arguments for interface IF with address ADDR.
# stack_run IF ADDR [MTCP-RUN OPTIONS...]  the words that run a program on the stack.
stack_run() {
    local interface="$1" address="$2"
    shift 2
    echo "$BIN/mtcp-run --iface $interface --addr $address/24 $* --"
}

# start_nginx NAME NS WORKERS CONNECTIONS [MTCP_RUN_WORDS...]  starts nginx in NS, on the
# stack when mtcp-run's words are given; sets NGINX_PID (the master) and NGINX_DIR.
start_nginx() {
    local name="$1" ns="$2" workers="$3" connections="$4"
    shift 4
    prepare_nginx "$name" "$workers" "$connections"
    launch_nginx "$ns" "$@"
}

# prepare_nginx NAME WORKERS CONNECTIONS  NGINX_DIR with its nginx.conf, for launch_nginx
# (a suite may adapt the configuration in between).
prepare_nginx() {
    NGINX_DIR="$BENCH_TMP/nginx-$1"
    mkdir -p "$NGINX_DIR"
    chmod 755 "$NGINX_DIR"
    bench_write_nginx_conf "$NGINX_DIR" "$2" "$3"
}

# launch_nginx NS [MTCP_RUN_WORDS...]  starts the nginx of NGINX_DIR in NS in the foreground
# of a background job, tracked for clean-up; sets NGINX_PID (the master).
launch_nginx() {
    local ns="$1"
    shift
    # shellcheck disable=SC2068 # mtcp-run's words
    ip netns exec "$ns" $@ nginx -c "$NGINX_DIR/nginx.conf" -g 'daemon off;' >"$NGINX_DIR/out.log" 2>&1 &
    NGINX_PID=$!
    netns_track_pid "$NGINX_PID"
    SUITE_PIDS+=("$NGINX_PID")
}

# check_started PID LOG WHAT  fails loudly when a server died at start.
check_started() {
    if ! kill -0 "$1" 2>/dev/null; then
        bench_log "$3 did not start; its output:"
        cat "$2" >&2 || true
        return 1
    fi
}

# wait_stack_http NS IF ADDR URL  waits for URL through a client on the stack (curl under
# mtcp-run), up to 10 tries.
wait_stack_http() {
    local ns="$1" iface="$2" addr="$3" url="$4" i
    for ((i = 0; i < 10; i++)); do
        # shellcheck disable=SC2046 # mtcp-run's words
        if ip netns exec "$ns" $(stack_run "$iface" "$addr") curl -s -o /dev/null -f --max-time 2 "$url" \
            </dev/null >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.3
    done
    bench_log "no answer from $url through the stack in $ns"
    return 1
}

# --- One wrk run. --------------------------------------------------------------------------

# run_wrk SUITE CASE SIDE ROUND CONCURRENCY CORES SERVER_PID URL MODE THREADS CLIENT_WORDS...
# MODE is keepalive or close (Connection: close: a new connection per request). A request
# unanswered after 1 s is a timeout, which counts as an error: on a veth nothing is that slow
# unless a connection stalled.
run_wrk() {
    local suite="$1" case="$2" side="$3" round="$4" conc="$5" cores="$6" server="$7" url="$8" mode="$9"
    local threads="${10}"
    shift 10
    local out="$WORK/$suite-$case-$side-$round-$conc-$cores.wrk" cpufile="$WORK/cpu.$$"
    local -a header=()
    [[ "$mode" == close ]] && header=(-H "Connection: close")
    local before after status=0
    local -a cmd=("$@" wrk -t"$threads" -c"$conc" -d"${DURATION}s" --timeout 1s "${header[@]}" "$url")
    bench_command "$suite $case ($side): ${cmd[*]}"
    before="$(bench_cpu_ticks "$server")"
    bench_timed "$out" "$cpufile" $((DURATION + 20)) "${cmd[@]}" || status=$?
    after="$(bench_cpu_ticks "$server")"
    local rps requests errors note=""
    read -r rps requests errors <<<"$(bench_wrk_parse "$out")"
    if ((status != 0)); then
        note="wrk exit $status"
        errors=$((errors + 1))
    fi
    kill -0 "$server" 2>/dev/null || { note+="${note:+; }server died"; errors=$((errors + 1)); }
    ((errors)) && note+="${note:+; }$(grep -E 'Socket errors|Non-2xx' "$out" | tr '\n' ' ')"
    bench_record "$suite" "$case" "$side" "$round" "$conc" "$cores" "$rps" "req/s" "$requests" \
        "$(cat "$cpufile" 2>/dev/null || echo NA)" "$(bench_ticks_to_seconds $((after - before)))" "$errors" "$note"
}

# --- 1. nginx on the stack, wrk on the kernel. ---------------------------------------------

suite_nginx() {
    bench_log "suite nginx: nginx (1 worker) on the kernel vs under the library; wrk on the kernel"
    start_nginx k1 "$K_SRV_NS" 1 4096
    local kpid="$NGINX_PID" kdir="$NGINX_DIR"
    start_nginx s1 "$S_SRV_NS" 1 4096 $(stack_run "$S_SRV_IF" "$S_SRV_ADDR")
    local spid="$NGINX_PID" sdir="$NGINX_DIR"
    bench_wait_http ip netns exec "$K_CLI_NS" "http://$K_SRV_ADDR/64.bin" ||
        server_failed "nginx (kernel)" "$kpid" "$kdir/out.log" "$kdir/error.log" || return 1
    bench_wait_http ip netns exec "$S_CLI_NS" "http://$S_SRV_ADDR/64.bin" ||
        server_failed "nginx (stack)" "$spid" "$sdir/out.log" "$sdir/error.log" || return 1
    local -a cases=()
    local conc file mode
    for conc in "${NGINX_CONCURRENCY[@]}"; do
        cases+=("64.bin keepalive $conc" "64.bin close $conc")
    done
    for file in "${FILES[@]}"; do
        [[ "$file" == 64.bin ]] && continue
        cases+=("$file keepalive $FIXED_CONCURRENCY" "$file close $FIXED_CONCURRENCY")
    done
    local entry round
    for entry in "${cases[@]}"; do
        read -r file mode conc <<<"$entry"
        for ((round = 1; round <= ROUNDS; round++)); do
            run_wrk nginx "${file%.bin}-$mode" kernel "$round" "$conc" 1 "$kpid" "http://$K_SRV_ADDR/$file" \
                "$mode" 1 ip netns exec "$K_CLI_NS"
            run_wrk nginx "${file%.bin}-$mode" stack "$round" "$conc" 1 "$spid" "http://$S_SRV_ADDR/$file" \
                "$mode" 1 ip netns exec "$S_CLI_NS"
        done
    done
    bench_stop "$spid"
    bench_stop "$kpid"
}

# --- 2. Both ends on the stack. ------------------------------------------------------------

# Servers start afresh for every round, on both sides alike, because each client run here is
# a new stack: a long-lived server on the stack still holds the previous client's 4-tuples in
# TIME-WAIT (after Connection: close), and SYNs that reuse them stall (see bench/README.md).
# BENCH_REUSE_SERVERS=1 keeps one server per suite and shows that effect.

# fresh_nginx_pair KERNEL_NAME STACK_NAME NS IF ADDR CLIENT_NS CLIENT_IF CLIENT_ADDR WORKERS
# (re)starts nginx on the kernel pair and on the stack at ADDR; sets KPID and SPID.
fresh_nginx_pair() {
    local kname="$1" sname="$2" ns="$3" iface="$4" addr="$5" cns="$6" cif="$7" caddr="$8" workers="$9"
    if [[ -n "${KPID:-}" && "${BENCH_REUSE_SERVERS:-0}" == 1 ]] && kill -0 "$KPID" 2>/dev/null &&
        kill -0 "$SPID" 2>/dev/null; then
        return 0
    fi
    # SIGTERM: nginx's fast shutdown (a graceful one waits for open keep-alive connections);
    # both at once, then wait for each.
    kill -TERM ${KPID:-} ${SPID:-} 2>/dev/null || true
    [[ -n "${KPID:-}" ]] && bench_stop "$KPID" 30 TERM
    [[ -n "${SPID:-}" ]] && bench_stop "$SPID" 30 TERM
    start_nginx "$kname" "$K_SRV_NS" "$workers" 4096
    KPID="$NGINX_PID"
    local kdir="$NGINX_DIR"
    # shellcheck disable=SC2046 # mtcp-run's words
    start_nginx "$sname" "$ns" "$workers" 4096 $(stack_run "$iface" "$addr")
    SPID="$NGINX_PID"
    local sdir="$NGINX_DIR"
    bench_wait_http ip netns exec "$K_CLI_NS" "http://$K_SRV_ADDR/64.bin" ||
        server_failed "nginx (kernel)" "$KPID" "$kdir/out.log" "$kdir/error.log" || return 1
    wait_stack_http "$cns" "$cif" "$caddr" "http://$addr/64.bin" ||
        server_failed "nginx (stack)" "$SPID" "$sdir/out.log" "$sdir/error.log" || return 1
}

suite_both() {
    bench_log "suite both: nginx and wrk both on the kernel vs both under the library"
    local file mode round
    KPID="" SPID=""
    for file in "${FILES[@]}"; do
        for mode in keepalive close; do
            for ((round = 1; round <= ROUNDS; round++)); do
                fresh_nginx_pair k2 b2 "$B_SRV_NS" "$B_SRV_IF" "$B_SRV_ADDR" "$B_CLI_NS" "$B_CLI_IF" "$B_CLI_ADDR" 1 ||
                    return 1
                run_wrk both "${file%.bin}-$mode" kernel "$round" "$FIXED_CONCURRENCY" 1 "$KPID" \
                    "http://$K_SRV_ADDR/$file" "$mode" 1 ip netns exec "$K_CLI_NS"
                # shellcheck disable=SC2046 # mtcp-run's words
                run_wrk both "${file%.bin}-$mode" stack "$round" "$FIXED_CONCURRENCY" 1 "$SPID" \
                    "http://$B_SRV_ADDR/$file" "$mode" 1 ip netns exec "$B_CLI_NS" \
                    $(stack_run "$B_CLI_IF" "$B_CLI_ADDR")
            done
        done
    done
    bench_stop "$SPID"
    bench_stop "$KPID"
}

# --- 3. redis. -----------------------------------------------------------------------------

# run_redis SIDE ROUND SERVER_PID ADDR TEST PIPELINE REQUESTS CLIENT_WORDS...
run_redis() {
    local side="$1" round="$2" server="$3" addr="$4" test="$5" pipeline="$6" requests="$7"
    shift 7
    local out="$WORK/redis-$test-$pipeline-$side-$round.csv" cpufile="$WORK/cpu.$$" before after status=0
    local -a cmd=("$@" redis-benchmark -h "$addr" -p 6379 -c 50 -n "$requests" -P "$pipeline"
        -t "${test,,}" --csv)
    bench_command "redis ${test}-P$pipeline ($side): ${cmd[*]}"
    before="$(bench_cpu_ticks "$server")"
    bench_timed "$out" "$cpufile" 60 "${cmd[@]}" || status=$?
    after="$(bench_cpu_ticks "$server")"
    local rps errors=0 note=""
    rps="$(bench_redis_parse "$out" "$test")"
    if ((status != 0)); then
        errors=1
        note="redis-benchmark exit $status"
    fi
    if grep -qiE '^(error|.*connection refused|.*ERR )' "$out"; then
        errors=$((errors + 1))
        note+="${note:+; }$(grep -iE 'error|refused|ERR ' "$out" | head -n 1)"
    fi
    bench_record redis "$test-P$pipeline" "$side" "$round" 50 1 "$rps" "req/s" "$requests" \
        "$(cat "$cpufile" 2>/dev/null || echo NA)" "$(bench_ticks_to_seconds $((after - before)))" "$errors" "$note"
}

suite_redis() {
    bench_log "suite redis: redis-server on the kernel vs under the library; redis-benchmark on the kernel"
    local -a redis_args=(--port 6379 --bind 0.0.0.0 --protected-mode no --save "" --appendonly no
        --daemonize no --logfile "")
    ip netns exec "$K_SRV_NS" redis-server "${redis_args[@]}" >"$BENCH_TMP/redis-k.log" 2>&1 &
    local kpid=$!
    netns_track_pid "$kpid"
    SUITE_PIDS+=("$kpid")
    # shellcheck disable=SC2046 # mtcp-run's words
    ip netns exec "$S_SRV_NS" $(stack_run "$S_SRV_IF" "$S_SRV_ADDR") redis-server "${redis_args[@]}" \
        >"$BENCH_TMP/redis-s.log" 2>&1 &
    local spid=$!
    netns_track_pid "$spid"
    SUITE_PIDS+=("$spid")
    local i
    for i in $(seq 1 100); do
        ip netns exec "$K_CLI_NS" redis-cli -h "$K_SRV_ADDR" ping 2>/dev/null | grep -q PONG &&
            ip netns exec "$S_CLI_NS" timeout 2 redis-cli -h "$S_SRV_ADDR" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    check_started "$kpid" "$BENCH_TMP/redis-k.log" "redis (kernel)" || return 1
    check_started "$spid" "$BENCH_TMP/redis-s.log" "redis (stack)" || return 1
    local test pipeline requests round index
    for test in SET GET; do
        for index in 0 1; do
            pipeline=$((index == 0 ? 1 : 16))
            requests="${REDIS_REQUESTS[$index]}"
            for ((round = 1; round <= ROUNDS; round++)); do
                run_redis kernel "$round" "$kpid" "$K_SRV_ADDR" "$test" "$pipeline" "$requests" \
                    ip netns exec "$K_CLI_NS"
                run_redis stack "$round" "$spid" "$S_SRV_ADDR" "$test" "$pipeline" "$requests" \
                    ip netns exec "$S_CLI_NS"
            done
        done
    done
    bench_stop "$spid" 50 TERM
    bench_stop "$kpid" 50 TERM
}

# --- 4. mtcp-httpd and mtcp-load (the stack's own API) vs nginx and wrk on the kernel. -----

# run_mtcp_load ROUND CORES MODE SERVER_PID
run_mtcp_load() {
    local round="$1" cores="$2" mode="$3" server="$4"
    local out="$WORK/httpd-$mode-$cores-$round.load" cpufile="$WORK/cpu.$$" before after status=0
    local -a per=(--connections 100000000 --requests-per-connection 1)
    [[ "$mode" == keepalive ]] &&
        per=(--connections "$FIXED_CONCURRENCY" --requests-per-connection 1000000000)
    local -a cmd=(ip netns exec "$B_CLI_NS" "$BIN/mtcp-load" --iface "$B_CLI_IF" --addr "$B_CLI_ADDR/24"
        --cores "$cores" --server "$B_SRV_ADDR" --path /64.bin --concurrency "$FIXED_CONCURRENCY"
        "${per[@]}" --duration "$DURATION")
    bench_command "httpd 64-$mode, $cores core(s) (stack): ${cmd[*]}"
    before="$(bench_cpu_ticks "$server")"
    bench_timed "$out" "$cpufile" $((DURATION + 20)) "${cmd[@]}" || status=$?
    after="$(bench_cpu_ticks "$server")"
    local line completed non2xx errors seconds rps note=""
    line="$(grep '^mtcp-load: completed=' "$out" | tail -n 1)"
    completed="$(sed -n 's/.* completed=\([0-9]*\).*/\1/p;s/^mtcp-load: completed=\([0-9]*\).*/\1/p' <<<"$line" | head -n 1)"
    non2xx="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
    errors="$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")"
    seconds="$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")"
    if [[ -z "$line" || -z "$completed" || -z "$seconds" ]]; then
        rps=NA
        completed=0
        errors=1
        note="no result line (exit $status): $(tail -n 2 "$out" | tr '\n' ' ')"
    else
        rps="$(awk -v c="$completed" -v s="$seconds" 'BEGIN { printf "%.2f", c / s }')"
        errors=$((errors + non2xx))
        ((errors)) && note="non2xx=$non2xx; $(grep -o 'errors=.*' <<<"$line" | cut -c1-200)"
    fi
    kill -0 "$server" 2>/dev/null || { note+="${note:+; }server died"; errors=$((errors + 1)); }
    bench_record httpd "64-$mode" stack "$round" "$FIXED_CONCURRENCY" "$cores" "$rps" "req/s" "$completed" \
        "$(cat "$cpufile" 2>/dev/null || echo NA)" "$(bench_ticks_to_seconds $((after - before)))" "$errors" "$note"
}

suite_httpd() {
    bench_log "suite httpd: mtcp-httpd + mtcp-load on the stack's API vs nginx + wrk on the kernel, 1 and 2 cores"
    local cores mode round i kpid="" spid="" kdir log
    for cores in "${HTTPD_CORES[@]}"; do
        for mode in close keepalive; do
            for ((round = 1; round <= ROUNDS; round++)); do
                # Fresh servers each round (see suite_both), unless BENCH_REUSE_SERVERS=1.
                if [[ "${BENCH_REUSE_SERVERS:-0}" != 1 || -z "$spid" ]] || ! kill -0 "$spid" 2>/dev/null ||
                    [[ "$(cat "$BENCH_TMP/httpd.cores" 2>/dev/null)" != "$cores" ]]; then
                    [[ -n "$spid" ]] && bench_stop "$spid" 30 TERM
                    [[ -n "$kpid" ]] && bench_stop "$kpid" 30 TERM
                    start_nginx "k4-$cores" "$K_SRV_NS" "$cores" 4096
                    kpid="$NGINX_PID" kdir="$NGINX_DIR"
                    log="$BENCH_TMP/httpd-$cores-$mode-$round.log"
                    ip netns exec "$B_SRV_NS" "$BIN/mtcp-httpd" --iface "$B_SRV_IF" --addr "$B_SRV_ADDR/24" \
                        --root "$WWW" --port 80 --cores "$cores" --duration 900 >"$log" 2>&1 &
                    spid=$!
                    echo "$cores" >"$BENCH_TMP/httpd.cores"
                    netns_track_pid "$spid"
                    SUITE_PIDS+=("$spid")
                    bench_command "httpd server ($cores core(s), stack): ip netns exec B_SRV_NS $BIN/mtcp-httpd --iface $B_SRV_IF --addr $B_SRV_ADDR/24 --root WWW --port 80 --cores $cores"
                    bench_wait_http ip netns exec "$K_CLI_NS" "http://$K_SRV_ADDR/64.bin" ||
                        server_failed "nginx (kernel)" "$kpid" "$kdir/out.log" "$kdir/error.log" || return 1
                    for ((i = 0; i < 100; i++)); do
                        (($(grep -c serving "$log" 2>/dev/null) >= cores)) && break
                        kill -0 "$spid" 2>/dev/null || break
                        sleep 0.1
                    done
                    grep -q serving "$log" || server_failed mtcp-httpd "$spid" "$log" || return 1
                fi
                run_wrk httpd "64-$mode" kernel "$round" "$FIXED_CONCURRENCY" "$cores" "$kpid" \
                    "http://$K_SRV_ADDR/64.bin" "$mode" "$cores" ip netns exec "$K_CLI_NS"
                run_mtcp_load "$round" "$cores" "$mode" "$spid"
            done
        done
    done
    [[ -n "$spid" ]] && bench_stop "$spid" 30 TERM
    [[ -n "$kpid" ]] && bench_stop "$kpid" 30
    return 0
}

# --- 5. Bulk: one connection, one large file. ----------------------------------------------

# run_bulk SIDE ROUND SERVER_PID URL CLIENT_WORDS...
run_bulk() {
    local side="$1" round="$2" server="$3" url="$4"
    shift 4
    local out="$WORK/bulk-$side-$round.curl" cpufile="$WORK/cpu.$$" before after status=0
    local -a cmd=("$@" curl -sS -o /dev/null --max-time 120 -w '%{http_code} %{size_download} %{time_total}\n' "$url")
    bench_command "bulk ${BULK_MIB} MiB ($side): ${cmd[*]}"
    before="$(bench_cpu_ticks "$server")"
    bench_timed "$out" "$cpufile" 130 "${cmd[@]}" || status=$?
    after="$(bench_cpu_ticks "$server")"
    local code size seconds value errors=0 note=""
    read -r code size seconds <<<"$(tail -n 1 "$out")"
    if ((status != 0)) || [[ "$code" != 200 || "$size" != $((BULK_MIB * 1048576)) ]]; then
        errors=1
        value=NA
        note="curl exit $status, HTTP ${code:-?}, ${size:-?} bytes: $(head -n 1 "$out")"
    else
        value="$(awk -v b="$size" -v s="$seconds" 'BEGIN { printf "%.1f", b * 8 / s / 1e6 }')"
    fi
    # Work in GiB, so CPU per unit is CPU seconds per GiB.
    bench_record bulk "GET ${BULK_MIB}MiB" "$side" "$round" 1 1 "$value" "Mbit/s" \
        "$(awk -v m="$BULK_MIB" 'BEGIN { printf "%.4f", m / 1024 }')" \
        "$(cat "$cpufile" 2>/dev/null || echo NA)" "$(bench_ticks_to_seconds $((after - before)))" "$errors" "$note"
}

suite_bulk() {
    bench_log "suite bulk: one connection, ${BULK_MIB} MiB from nginx (kernel vs library) to curl on the kernel"
    start_nginx k5 "$K_SRV_NS" 1 1024
    local kpid="$NGINX_PID"
    start_nginx s5 "$S_SRV_NS" 1 1024 $(stack_run "$S_SRV_IF" "$S_SRV_ADDR")
    local spid="$NGINX_PID" sdir="$NGINX_DIR"
    bench_wait_http ip netns exec "$K_CLI_NS" "http://$K_SRV_ADDR/64.bin" ||
        server_failed "nginx (kernel)" "$kpid" || return 1
    bench_wait_http ip netns exec "$S_CLI_NS" "http://$S_SRV_ADDR/64.bin" ||
        server_failed "nginx (stack)" "$spid" "$sdir/out.log" "$sdir/error.log" || return 1
    local round
    for ((round = 1; round <= ROUNDS; round++)); do
        run_bulk kernel "$round" "$kpid" "http://$K_SRV_ADDR/bulk.bin" ip netns exec "$K_CLI_NS"
        run_bulk stack "$round" "$spid" "http://$S_SRV_ADDR/bulk.bin" ip netns exec "$S_CLI_NS"
    done
    bench_stop "$spid"
    bench_stop "$kpid"
}

# --- 6. Memory per idle connection. --------------------------------------------------------

# Kernel memory in slabs (reclaimable and not), KiB.
slab_kib() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }

# run_memory SIDE COUNT SERVER_NS SERVER_ADDR CLIENT_NS CLIENT_IF PREFIX [MTCP_RUN_WORDS...]
# Starts a 1-worker nginx, opens COUNT idle connections from the kernel client and sets
# MEMORY_RESULT to "RSS_DELTA_KIB SLAB_DELTA_KIB ESTABLISHED CLIENT_STATUS" (or fails).
run_memory() {
    local side="$1" count="$2" ns="$3" addr="$4" cli_ns="$5" cli_if="$6" prefix="$7"
    shift 7
    start_nginx "m-$side-$count" "$ns" 1 $((count + 1000)) "$@"
    local pid="$NGINX_PID" dir="$NGINX_DIR"
    if ! bench_wait_http ip netns exec "$cli_ns" "http://$addr/64.bin"; then
        server_failed "nginx ($side)" "$pid" "$dir/out.log" "$dir/error.log" || true
        bench_stop "$pid"
        return 1
    fi
    # One source address per 25,000 connections (the ephemeral range holds ~28,000).
    local -a sources=()
    local n i
    n=$(((count + 24999) / 25000))
    for ((i = 0; i < n; i++)); do
        local source="$prefix.$((100 + i))"
        ip netns exec "$cli_ns" ip addr add "$source/24" dev "$cli_if" 2>/dev/null || true
        sources+=(--source "$source")
    done
    sleep 0.5
    local rss0 slab0 rss1 slab1 status=0 fifo="$BENCH_TMP/hold-$side-$count"
    rss0="$(bench_rss_kib "$pid")"
    slab0="$(slab_kib)"
    mkfifo "$fifo"
    ip netns exec "$cli_ns" python3 "$ROOT/bench/lib/idle_clients.py" --server "$addr" --count "$count" \
        "${sources[@]}" --hold 300 --timeout 120 <"$fifo" >"$fifo.out" 2>&1 &
    local client=$!
    netns_track_pid "$client"
    exec {hold}>"$fifo"
    bench_command "memory $count ($side): ip netns exec CLIENT_NS python3 bench/lib/idle_clients.py --server $addr --count $count ${sources[*]}"
    for ((i = 0; i < 1500; i++)); do
        grep -q '^established' "$fifo.out" 2>/dev/null && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
    done
    # Let nginx accept the last ones, then measure.
    sleep "$SETTLE"
    rss1="$(bench_rss_kib "$pid")"
    slab1="$(slab_kib)"
    local line
    line="$(grep '^established' "$fifo.out" 2>/dev/null || echo "established 0")"
    if [[ "$(cut -d' ' -f2 <<<"$line")" != "$count" ]]; then
        bench_log "memory ($side, $count): the client says: $(tail -n 3 "$fifo.out" 2>/dev/null | tr '\n' ' ')"
    fi
    exec {hold}>&-
    wait "$client" 2>/dev/null || status=$?
    rm -f "$fifo"
    bench_stop "$pid"
    for ((i = 0; i < n; i++)); do
        ip netns exec "$cli_ns" ip addr del "$prefix.$((100 + i))/24" dev "$cli_if" 2>/dev/null || true
    done
    MEMORY_RESULT="$((rss1 - rss0)) $((slab1 - slab0)) $(cut -d' ' -f2 <<<"$line") $status"
}

suite_memory() {
    bench_log "suite memory: idle connections held by nginx (1 worker), kernel vs library"
    local count kres sres limit
    # Each side holds every connection in one process (nginx's one worker; the library's
    # sockets have placeholder descriptors), so the open-file hard limit bounds the count.
    limit="$(ulimit -Hn)"
    for count in "${MEMORY_COUNTS[@]}"; do
        if [[ "$limit" != unlimited ]] && ((count + 1000 > limit)); then
            local why="needs $((count + 1000)) descriptors in one process; the hard limit here is $limit (raising it needs CAP_SYS_RESOURCE)"
            bench_record memory "idle $count" kernel 1 "$count" 1 skipped "B/conn" "$count" NA NA 0 "$why"
            bench_record memory "idle $count" stack 1 "$count" 1 skipped "B/conn" "$count" NA NA 0 "$why"
            continue
        fi
        MEMORY_RESULT="0 0 0 1"
        run_memory kernel "$count" "$K_SRV_NS" "$K_SRV_ADDR" "$K_CLI_NS" "$K_CLI_IF" "${K_SRV_ADDR%.*}" || true
        kres="$MEMORY_RESULT"
        MEMORY_RESULT="0 0 0 1"
        # shellcheck disable=SC2046 # mtcp-run's words
        run_memory stack "$count" "$S_SRV_NS" "$S_SRV_ADDR" "$S_CLI_NS" "$S_CLI_IF" "$S_PREFIX" \
            $(stack_run "$S_SRV_IF" "$S_SRV_ADDR") || true
        sres="$MEMORY_RESULT"
        local krss kslab kest kst srss sslab sest sst
        read -r krss kslab kest kst <<<"$kres"
        read -r srss sslab sest sst <<<"$sres"
        # The client's kernel sockets are in both slab deltas; the difference is the kernel
        # server's sockets (noisy: the slab is machine-wide).
        local kernel_bytes stack_bytes kerr=0 serr=0
        ((kest == count)) || kerr=1
        ((sest == count)) || serr=1
        kernel_bytes="$(awk -v r="$krss" -v k="$kslab" -v s="$sslab" -v n="$count" \
            'BEGIN { printf "%.0f", (r + (k - s)) * 1024 / n }')"
        stack_bytes="$(awk -v r="$srss" -v n="$count" 'BEGIN { printf "%.0f", r * 1024 / n }')"
        bench_record memory "idle $count" kernel 1 "$count" 1 "$kernel_bytes" "B/conn" "$count" NA NA "$kerr" \
            "established $kest; nginx RSS +$krss KiB; slab +$kslab KiB (stack run: +$sslab KiB)"
        bench_record memory "idle $count" stack 1 "$count" 1 "$stack_bytes" "B/conn" "$count" NA NA "$serr" \
            "established $sest; nginx RSS +$srss KiB"
    done
}

# --- 7. Micro-benchmarks (package-benchmark, bench/micro). ---------------------------------

suite_micro() {
    bench_log "suite micro: hot-path micro-benchmarks (bench/micro, package-benchmark)"
    bench_command "micro: cd bench/micro && swift package --allow-writing-to-package-directory benchmark --format markdown"
    local status=0
    (cd "$ROOT/bench/micro" && timeout 900 swift package --allow-writing-to-package-directory benchmark \
        --no-progress --format markdown </dev/null) >"$WORK/micro.txt" 2>"$WORK/micro.err" || status=$?
    if ((status != 0)); then
        bench_log "micro-benchmarks failed (exit $status):"
        tail -n 30 "$WORK/micro.err" >&2
        echo "(the micro-benchmarks failed with exit status $status; see the run's micro.err)" >>"$WORK/micro.txt"
        BENCH_FAILURES=$((BENCH_FAILURES + 1))
    fi
}

# --- 9. What observability costs. ----------------------------------------------------------

# nginx (1 worker) under the library three ways, wrk (on the kernel) 64-byte keep-alive at
# FIXED_CONCURRENCY: the statistics region off (MTCP_STATS_SHM=0), on (the default), and
# capture on as well (MTCP_PCAP); the kernel's nginx beside them. Each variant starts afresh
# in every round (they share the stack's address), and the variants alternate round by round.
# OBS_ROUNDS rounds (at least 5 outside --quick: the 2% the issue allows is within one run's noise).
suite_observability() {
    bench_log "suite observability: nginx under the library with the statistics region off, on, and capture on"
    start_nginx ok1 "$K_SRV_NS" 1 4096
    local kpid="$NGINX_PID" kdir="$NGINX_DIR"
    bench_wait_http ip netns exec "$K_CLI_NS" "http://$K_SRV_ADDR/64.bin" ||
        server_failed "nginx (kernel)" "$kpid" "$kdir/out.log" "$kdir/error.log" || return 1
    local rounds="${OBS_ROUNDS:-$ROUNDS}" round side spid sdir
    ((QUICK == 0 && rounds < 5)) && rounds=5
    local -A words=(
        [stack-noshm]="--no-stats-shm"
        [stack]=""
        [stack-pcap]="--pcap $BENCH_TMP/observability.pcapng --pcap-size 256 --pcap-files 2"
    )
    for ((round = 1; round <= rounds; round++)); do
        run_wrk observability 64-keepalive kernel "$round" "$FIXED_CONCURRENCY" 1 "$kpid" \
            "http://$K_SRV_ADDR/64.bin" keepalive 1 ip netns exec "$K_CLI_NS"
        for side in stack-noshm stack stack-pcap; do
            # shellcheck disable=SC2046,SC2086 # mtcp-run's words
            start_nginx "o-$side" "$S_SRV_NS" 1 4096 $(stack_run "$S_SRV_IF" "$S_SRV_ADDR" ${words[$side]})
            spid="$NGINX_PID" sdir="$NGINX_DIR"
            bench_wait_http ip netns exec "$S_CLI_NS" "http://$S_SRV_ADDR/64.bin" ||
                server_failed "nginx (stack, $side)" "$spid" "$sdir/out.log" "$sdir/error.log" || return 1
            run_wrk observability 64-keepalive "$side" "$round" "$FIXED_CONCURRENCY" 1 "$spid" \
                "http://$S_SRV_ADDR/64.bin" keepalive 1 ip netns exec "$S_CLI_NS"
            bench_stop "$spid" 30 TERM
            rm -f "$BENCH_TMP"/observability.pcapng*
        done
    done
    bench_stop "$kpid"
}
