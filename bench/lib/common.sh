# shellcheck shell=bash
# Helpers shared by bench/run.sh and its suites: CPU time of process trees, parsing wrk and
# redis-benchmark output, recording one measurement, nginx configuration. Source after
# tests/interop/lib/netns.sh. Every helper that starts a load bounds it with `timeout`.

# Clock ticks per second, for /proc/PID/stat's utime and stime.
BENCH_CLK_TCK="$(getconf CLK_TCK)"

bench_log() { echo "bench: $*" >&2; }

# bench_descendants PID  prints PID and every live descendant, one per line (from /proc).
bench_descendants() {
    local root="$1" stat pid ppid rest
    local -A children=()
    for stat in /proc/[0-9]*/stat; do
        read -r rest 2>/dev/null <"$stat" || continue
        pid="${rest%% *}"
        rest="${rest##*) }"
        ppid="$(cut -d' ' -f2 <<<"$rest")"
        children[$ppid]+="$pid "
    done
    local -a queue=("$root")
    while ((${#queue[@]})); do
        pid="${queue[0]}"
        queue=("${queue[@]:1}")
        [[ -d "/proc/$pid" ]] || continue
        echo "$pid"
        # shellcheck disable=SC2206 # PIDs are words
        queue+=(${children[$pid]:-})
    done
}

# bench_cpu_ticks PID  prints utime+stime of PID and its live descendants (all threads), in
# ticks. The command name in /proc/PID/stat may hold spaces: fields are counted after ')'.
bench_cpu_ticks() {
    local total=0 pid rest fields
    while read -r pid; do
        read -r rest 2>/dev/null <"/proc/$pid/stat" || continue
        rest="${rest##*) }"
        read -r -a fields <<<"$rest"
        # After ') ': state(0) ppid(1) ... utime(11) stime(12).
        total=$((total + fields[11] + fields[12]))
    done < <(bench_descendants "$1")
    echo "$total"
}

# bench_rss_kib PID  prints the resident set of PID and its live descendants, in KiB.
bench_rss_kib() {
    local total=0 pid kib
    while read -r pid; do
        kib="$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null)"
        total=$((total + ${kib:-0}))
    done < <(bench_descendants "$1")
    echo "$total"
}

# bench_ticks_to_seconds TICKS
bench_ticks_to_seconds() {
    awk -v t="$1" -v hz="$BENCH_CLK_TCK" 'BEGIN { printf "%.3f", t / hz }'
}

# bench_timed OUT CPUFILE SECONDS CMD...  runs CMD with its output in OUT, killed after
# SECONDS; writes the user+system CPU seconds of CMD and everything it waited for to CPUFILE.
# Returns CMD's status (124 when the time ran out).
bench_timed() {
    local out="$1" cpufile="$2" limit="$3"
    shift 3
    local status=0
    (
        set +e
        timeout --kill-after=5 "$limit" "$@" >"$out" 2>&1 </dev/null
        code=$?
        # The second line of `times`: user and system time of this subshell's children.
        # (A builtin with a redirection runs in this shell: a pipe would fork and see none.)
        times >"$cpufile.times"
        sed -n '2p' "$cpufile.times" | awk '{
            n = split($1 " " $2, parts, " "); total = 0
            for (i = 1; i <= n; i++) { split(parts[i], ms, "m"); sub("s", "", ms[2]); total += ms[1] * 60 + ms[2] }
            printf "%.3f\n", total }' >"$cpufile"
        rm -f "$cpufile.times"
        exit "$code"
    ) || status=$?
    return "$status"
}

# bench_wrk_parse FILE  prints "REQUESTS_PER_SECOND REQUESTS ERRORS" from wrk's output;
# errors are socket errors (connect, read, write, timeout) plus non-2xx/3xx responses.
bench_wrk_parse() {
    awk '
        /^Requests\/sec:/ { rps = $2 }
        /requests in/ { requests = $1 }
        /Socket errors:/ {
            for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(",", "", v); errors += v }
        }
        /Non-2xx or 3xx responses:/ { errors += $NF }
        END { printf "%s %s %d\n", (rps == "" ? "NA" : rps), (requests == "" ? 0 : requests), errors }
    ' "$1"
}

# bench_redis_parse FILE TEST  prints the requests per second of TEST (e.g. GET) from
# redis-benchmark --csv output, or NA.
bench_redis_parse() {
    awk -F'","' -v test="$2" '
        { gsub(/^"|"$/, "", $0) }
        $1 == test { rps = $2 }
        END { print (rps == "" ? "NA" : rps) }
    ' "$1"
}

# Column names of the results file, in order.
BENCH_COLUMNS="suite	case	side	round	concurrency	cores	value	unit	work	client_cpu_s	server_cpu_s	errors	note"

# bench_record SUITE CASE SIDE ROUND CONCURRENCY CORES VALUE UNIT WORK CLIENT_CPU SERVER_CPU ERRORS NOTE
# Appends one measurement to $BENCH_RESULTS and says it on stderr. A run with errors is
# recorded (the report shows it) and counted in BENCH_FAILURES. VALUE "skipped": a case this
# machine cannot run (NOTE says why); not a failure.
bench_record() {
    local IFS=$'\t'
    local errors="${12}" value="$7"
    # A run that completed nothing failed, whatever the tool said.
    if [[ "$value" != skipped && "$value" != NA && "$9" != NA ]] &&
        awk -v v="$value" -v w="$9" 'BEGIN { exit !(v + 0 == 0 || w + 0 == 0) }'; then
        set -- "${@:1:11}" $((errors + 1)) "${13:+${13}; }nothing completed"
        IFS=$'\t'
        echo "$*" >>"$BENCH_RESULTS"
        BENCH_FAILURES=$((BENCH_FAILURES + 1))
        bench_log "ERRORS in $1/$2 ($3, round $4): nothing completed"
        return 0
    fi
    echo "$*" >>"$BENCH_RESULTS"
    if [[ "$value" == skipped ]]; then
        bench_log "$1/$2 $3: skipped: ${13}"
    elif [[ "$errors" != 0 || "$value" == NA ]]; then
        BENCH_FAILURES=$((BENCH_FAILURES + 1))
        bench_log "ERRORS in $1/$2 ($3, round $4, concurrency $5, cores $6): value=$value errors=$errors ${13}"
    else
        bench_log "$1/$2 $3 round $4 c=$5 cores=$6: $7 $8 (client ${10} s, server ${11} s CPU)"
    fi
}

# bench_write_nginx_conf DIR WORKERS [CONNECTIONS]  writes DIR/nginx.conf serving DIR/www on
# port 80: no access log, long keep-alive, sendfile.
bench_write_nginx_conf() {
    local dir="$1" workers="$2" connections="${3:-4096}"
    mkdir -p "$dir/temp"
    cat >"$dir/nginx.conf" <<CONF
user ${BENCH_NGINX_USER:-www-data};
worker_processes $workers;
worker_rlimit_nofile $((connections * 2 + 1024));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $connections; multi_accept on; }
http {
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_header_timeout 600s;
    default_type application/octet-stream;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    server {
        listen 80 default_server backlog=4096;
        root ${WWW:?};
    }
}
CONF
}

# bench_wait_http NSEXEC... URL  waits up to 10 s for URL to answer 200 (curl run with the
# given namespace prefix, e.g. "ip netns exec NS").
bench_wait_http() {
    local url="${*: -1}" i
    local -a prefix=("${@:1:$#-1}")
    for ((i = 0; i < 100; i++)); do
        if "${prefix[@]}" curl -s -o /dev/null --max-time 1 -f "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    bench_log "no answer from $url within 10 s"
    return 1
}

# bench_stop PID [TENTHS [SIGNAL]]  asks PID (and its tree) to quit (SIGQUIT: nginx's
# graceful stop, unless SIGNAL says otherwise), then kills what is left.
bench_stop() {
    local pid="$1" tenths="${2:-50}" signal="${3:-QUIT}" i
    [[ -n "$pid" ]] || return 0
    local -a tree
    mapfile -t tree < <(bench_descendants "$pid")
    kill -"$signal" "$pid" 2>/dev/null || true
    for ((i = 0; i < tenths; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "${tree[@]}" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
