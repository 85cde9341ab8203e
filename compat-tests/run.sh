#!/usr/bin/env bash
# Runs Debian's own programs on the stack through the preload library (see compat-tests/README.md):
#
#   bash compat-tests/run.sh                  # every test
#   bash compat-tests/run.sh nginx redis      # some of them (names below)
#   COMPAT_MODE=kernel bash compat-tests/run.sh   # the same scripts with no library (checks them)
#   COMPAT_BACKEND=dpdk bash compat-tests/run.sh  # the library on DPDK (net_af_packet, --no-huge)
#
# Settings: COMPAT_SKIP="NAME..." (tests to leave out), COMPAT_PRELOAD=PATH (the library; default .build/release/libmtcp-preload.so, built
# when missing), COMPAT_LOG=debug (passed on as MTCP_LOG), COMPAT_KEEP=1 (keep work directories
# and detail logs), COMPAT_VERBOSE=1 (print every test's detail log, not only a failing one's).
# Needs root. Each test prints what it runs and PASS/FAIL per check; the last line is
# 'compat-tests: N passed, M failed' (checks); the exit status is non-zero when one failed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

# Name and time limit (seconds) of each test, in the order they run.
ALL=(passthrough:240 clients:300 nginx:240 nginx-workers:240 nginx-lifecycle:240 process-faults:120 syn-flood:120 shared-address:120 redis:300 memcached:120 both-ends:300 observability:180 dualstack:120 ipv6-programs:300 redis-suite:1000)
export COMPAT_MODE="${COMPAT_MODE:-preload}"
export COMPAT_BACKEND="${COMPAT_BACKEND:-afpacket}"

if [[ "$(id -u)" != 0 ]]; then
    echo "compat-tests: needs root (network namespaces)" >&2
    echo "compat-tests: 0 passed, 1 failed"
    exit 1
fi

if [[ "$COMPAT_MODE" == preload ]]; then
    if [[ -z "${COMPAT_PRELOAD:-}" ]]; then
        COMPAT_PRELOAD="$ROOT/.build/release/libmtcp-preload.so"
        if [[ ! -f "$COMPAT_PRELOAD" ]]; then
            echo "compat-tests: building the library: swift build -c release --product mtcp-preload"
            # shellcheck source=scripts/install-deps.sh
            source "$ROOT/scripts/install-deps.sh"
            mtcp_find_swift
            (cd "$ROOT" && swift build -c release --product mtcp-preload </dev/null)
        fi
    fi
    if [[ ! -f "$COMPAT_PRELOAD" ]]; then
        echo "compat-tests: no library at $COMPAT_PRELOAD" >&2
        echo "compat-tests: 0 passed, 1 failed"
        exit 1
    fi
    COMPAT_PRELOAD="$(realpath "$COMPAT_PRELOAD")"
    export COMPAT_PRELOAD
fi

# What a run killed with SIGKILL left behind (only namespaces whose creating shell is dead).
# shellcheck source=tests/interop/lib/netns.sh
source "$ROOT/tests/interop/lib/netns.sh"
PREFIXES=(cpass cpas2 ccli cngx cwrk clife cfault cflood crds cmemk cmem cpair cobs cdual cipv6 csuit csut2)
for prefix in "${PREFIXES[@]}"; do netns_sweep_stale "$prefix"; done

LOGS="$(mktemp -d /tmp/mtcp-compat-logs.XXXXXX)"
if [[ "${COMPAT_KEEP:-0}" != 1 ]]; then trap 'rm -rf "$LOGS"' EXIT; fi

selected=("$@")
for name in "${selected[@]}"; do
    if [[ " ${ALL[*]%%:*} " != *" $name "* ]]; then
        echo "compat-tests: no test '$name' (tests: ${ALL[*]%%:*})" >&2
        exit 2
    fi
done
passed=0
failed=0
failed_tests=()
started=$SECONDS
echo "compat-tests: mode $COMPAT_MODE${COMPAT_PRELOAD:+, backend $COMPAT_BACKEND, library $COMPAT_PRELOAD};" \
    "detail logs in $LOGS"
for entry in "${ALL[@]}"; do
    name="${entry%%:*}" limit="${entry##*:}"
    if ((${#selected[@]} > 0)) && [[ " ${selected[*]} " != *" $name "* ]]; then continue; fi
    if [[ " ${COMPAT_SKIP:-} " == *" $name "* ]]; then
        echo
        echo "==> compat-tests/test-$name.sh: skipped (COMPAT_SKIP)"
        continue
    fi
    echo
    echo "==> compat-tests/test-$name.sh (at most $limit s)"
    out="$LOGS/$name.out" detail="$LOGS/$name.log"
    start=$SECONDS
    status=0
    # SIGTERM first, so that the harness's trap removes namespaces and processes.
    timeout -k 30 "$limit" bash "$HERE/test-$name.sh" </dev/null 2>"$detail" | tee "$out" || status=$?
    # A test killed after its time limit could not clean up: sweep what it left.
    for prefix in "${PREFIXES[@]}"; do netns_sweep_stale "$prefix"; done
    result="$(sed -n 's/^compat-result: [^ ]* passed=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$out" | tail -n 1)"
    if [[ -z "$result" ]]; then
        echo "FAIL: test-$name.sh ended (exit status $status, $((SECONDS - start)) s) without a result"
        result="0 1"
    elif ((status != 0)) && [[ "${result#* }" == 0 ]]; then
        echo "FAIL: test-$name.sh exited with status $status"
        result="${result% *} 1"
    fi
    passed=$((passed + ${result% *}))
    failed=$((failed + ${result#* }))
    if [[ "${result#* }" != 0 ]]; then
        failed_tests+=("$name")
        echo "---- detail log of test-$name.sh (last 200 lines of $detail)"
        tail -n 200 "$detail"
        echo "---- end of the detail log of test-$name.sh"
    elif [[ "${COMPAT_VERBOSE:-0}" == 1 ]]; then
        cat "$detail"
    fi
    echo "<== test-$name.sh: ${result% *} passed, ${result#* } failed ($((SECONDS - start)) s)"
done

echo
if ((${#failed_tests[@]} > 0)); then echo "compat-tests: failing: ${failed_tests[*]}"; fi
echo "compat-tests: took $((SECONDS - started)) s"
echo "compat-tests: $passed passed, $failed failed"
((failed == 0))
