#!/usr/bin/env bash
# redis's own test suite (Debian's source of the installed redis-server) in external-server
# mode, run by tclsh in the peer namespace against a fresh redis-server twice, at the same time:
# on the kernel (baseline) and on the stack. Every test that passed on the kernel must pass on
# the stack.
#
#   COMPAT_REDIS_CACHE    where the source is kept between runs (default /var/cache/mtcp-compat)
#   COMPAT_SUITE_ARGS     runtest's options besides --host/--port (default below)
#   COMPAT_SUITE_UNITS    units to run (runtest --single each), blank-separated; unset: every
#                         unit, except on the dpdk backend, which runs the subset below
#
# The source comes from `apt-get source` with a private sources.list (deb-src lines for
# bookworm and its updates) and private lists and cache directories, so the system's apt state
# is untouched; the download happens once.
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

CACHE="${COMPAT_REDIS_CACHE:-/var/cache/mtcp-compat}"
# As redis's own CI runs an external server: the slow tests left out. --timeout bounds one test
# (a hung connection fails that test after a minute instead of after twenty).
# unit/geo and unit/hyperloglog are left out too: fuzzers that spend about 80 s each computing
# inside the server, with little traffic.
read -r -a SUITE_ARGS <<<"${COMPAT_SUITE_ARGS:---clients 1 --tags -slow --timeout 60 --skipunit unit/geo --skipunit unit/hyperloglog}"
# On the dpdk backend (COMPAT_BACKEND=dpdk) both runs take these units only, about half of the
# suite by time (1 minute each): the whole suite twice more would add over 4 minutes to CI. They keep the
# protocol and connection handling, the tests with the most round trips (scan, list, dump),
# pub/sub, MULTI, scripting, client tracking and output buffer limits.
DPDK_UNITS="unit/protocol unit/auth unit/keyspace unit/scan unit/type/list unit/type/hash unit/type/set
    unit/type/string unit/type/incr unit/pubsub unit/pubsubshard unit/multi unit/info unit/introspection
    unit/querybuf unit/obuf-limits unit/networking unit/other unit/dump unit/limits unit/quit unit/tracking
    unit/scripting"
if [[ "$COMPAT_BACKEND" == dpdk && -z "${COMPAT_SUITE_UNITS+set}" ]]; then COMPAT_SUITE_UNITS="$DPDK_UNITS"; fi
UNITS=()
read -r -d '' -a UNITS <<<"${COMPAT_SUITE_UNITS:-}" || true
for unit in "${UNITS[@]}"; do SUITE_ARGS+=(--single "$unit"); done
if ((${#UNITS[@]} > 0)); then say "units: ${UNITS[*]}"; fi
# Bound on each run (seconds): the baseline takes about 3 minutes on 2 cores.
SUITE_LIMIT="${COMPAT_SUITE_LIMIT:-420}"

VERSION="$(dpkg-query -W -f='${Version}' redis-server 2>/dev/null || true)"
if [[ -z "$VERSION" ]]; then
    fail "redis-server is not installed (scripts/install-deps.sh)"
    compat_finish
    exit 1
fi
TREE="$CACHE/redis-${VERSION#*:}"

# fetch_source  leaves Debian's source tree of redis $VERSION (patches applied) in $TREE.
fetch_source() {
    [[ -f "$TREE/.complete" ]] && return 0
    local apt="$CACHE/apt" download
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    cat >"$apt/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
LIST
    local -a options=(-q -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
    timeout 300 apt-get "${options[@]}" update </dev/null || return 1
    download="$(mktemp -d "$CACHE/download.XXXXXX")"
    (cd "$download" && timeout 300 apt-get "${options[@]}" source "redis=$VERSION" </dev/null) || {
        rm -rf "$download"
        return 1
    }
    local dir
    dir="$(find "$download" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' | head -n 1)"
    [[ -n "$dir" && -x "$dir/runtest" && -f "$dir/tests/test_helper.tcl" ]] || {
        rm -rf "$download"
        return 1
    }
    rm -rf "$TREE"
    mv "$dir" "$TREE"
    rm -rf "$download"
    touch "$TREE/.complete"
}
mkdir -p "$CACHE"
fetched() {
    # One fetch at a time (two runs may share the cache).
    (flock -w 600 9 && fetch_source) 9>"$CACHE/.lock"
}
check "Debian's source of redis $VERSION in $TREE (apt-get source, cached)" fetched
if [[ ! -f "$TREE/.complete" ]]; then
    compat_finish
    exit 1
fi

# A test that cannot work against a server on another host: it makes the server listen on a
# port it believes busy because it holds it itself, on the test's host; the server then moves
# to that port and every later test finds nothing on 6379. (No newline after the last name.)
SKIPFILE="$WORK/suite.skip"
printf '%s' "CONFIG SET rollback on apply error" >"$SKIPFILE"

# suite_copy DIR  a private copy of the suite (it writes tests/tmp) whose src/ holds the
# installed binaries, where runtest looks for them.
suite_copy() {
    local dir="$1" tool
    mkdir -p "$dir/src"
    cp -a "$TREE/runtest" "$TREE/tests" "$dir/"
    for tool in redis-server redis-cli redis-benchmark redis-check-aof redis-check-rdb; do
        ln -s "/usr/bin/$tool" "$dir/src/$tool"
    done
    # As redis-sentinel is redis-server under another name.
    ln -s /usr/bin/redis-server "$dir/src/redis-sentinel"
}

SERVER_ARGS=(--port 6379 --save '' --appendonly no --protected-mode no
    --enable-debug-command yes --enable-protected-configs yes)

# run_suite NAME  starts a fresh redis-server (on the stack, or on the kernel where the
# namespace has the kernel address) in STACK_NS and runs the suite from PEER_NS against it;
# leaves runtest's output in $WORK/NAME.out and the passed tests in $WORK/NAME.ok.
run_suite() {
    local name="$1" dir="$WORK/suite-$1"
    suite_copy "$dir"
    mkdir -p "$WORK/$name-data"
    if [[ "$name" == kernel ]]; then
        timeout -k 5 900 ip netns exec "$STACK_NS" redis-server "${SERVER_ARGS[@]}" \
            --dir "$WORK/$name-data" >"$WORK/$name-server.log" 2>&1 &
        SPAWNED=$!
        netns_track_pid "$SPAWNED"
    else
        spawn_on_stack "$WORK/$name-server.log" redis-server redis-server "${SERVER_ARGS[@]}" \
            --dir "$WORK/$name-data"
    fi
    local server=$SPAWNED
    wait_tcp_port "$PEER_NS" "$STACK_ADDR" 6379 || {
        echo "redis-server ($name) did not come up" >&2
        return 1
    }
    say "runtest --host $STACK_ADDR --port 6379 ${SUITE_ARGS[*]} ($name; up to $SUITE_LIMIT s)"
    local start=$SECONDS status=0
    (cd "$dir" && timeout -k 10 "$SUITE_LIMIT" ip netns exec "$PEER_NS" ./runtest --host "$STACK_ADDR" \
        --port 6379 --skipfile "$SKIPFILE" "${SUITE_ARGS[@]}" </dev/null >"$WORK/$name.out" 2>&1) ||
        status=$?
    # runtest colours its tags; the plain text is easier to parse.
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/$name.out" >"$WORK/$name.txt"
    sed -n 's/^\[ok\]: \(.*\) ([0-9]* ms)$/\1/p' "$WORK/$name.txt" | sort -u >"$WORK/$name.ok"
    say "$name: runtest exit status $status after $((SECONDS - start)) s;" \
        "$(wc -l <"$WORK/$name.ok") [ok], $(grep -c '^\[err\]' "$WORK/$name.txt") [err]," \
        "$(grep -c '^\[exception\]' "$WORK/$name.txt") [exception]"
    { grep -E '^\[(err|exception)\]' "$WORK/$name.txt" || true; } | head -n 20 | sed 's/^/    /'
    { grep -A 10 '^\[exception\]' "$WORK/$name.txt" || true; } | head -n 40 | sed 's/^/    /' >&2
    tail -n 30 "$WORK/$name.txt" >&2
    # Stop this server (SIGTERM through its `timeout`) before the next one.
    stop_pid "$server"
    return 0
}

# Baseline: the kernel owns the stack side's address. It runs at the same time as the stack's
# run, each in its own pair of namespaces (the suite mostly waits on round trips and timers, so
# the two share two cores with little effect: about 2 minutes instead of 4 in CI). The subshell
# keeps this pair's addresses; the clean-up ends its processes with the namespaces.
netns_setup --stack-ns csuit
netns_stack_kernel_address
(run_suite kernel) &
BASELINE=$!

# The same on the stack (in kernel mode: on the kernel again).
compat_setup csut2
run_suite stack || fail "the run on the stack did not complete"
wait "$BASELINE" || fail "the kernel baseline run did not complete"
check "baseline on the kernel: some tests passed ($(wc -l <"$WORK/kernel.ok" 2>/dev/null || echo 0))" test -s "$WORK/kernel.ok"
comm -23 "$WORK/kernel.ok" "$WORK/stack.ok" >"$WORK/missing.txt"
if [[ -s "$WORK/missing.txt" ]]; then
    say "passed on the kernel but not on the stack ($(wc -l <"$WORK/missing.txt")):"
    head -n 100 "$WORK/missing.txt" | sed 's/^/    /'
fi
check "every test that passed on the kernel ($(wc -l <"$WORK/kernel.ok")) passed on the stack ($(wc -l <"$WORK/stack.ok"))" \
    test ! -s "$WORK/missing.txt"
compat_finish
