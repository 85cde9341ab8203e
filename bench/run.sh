#!/usr/bin/env bash
# The benchmarks of issue 6: each workload against the kernel's TCP and against this stack,
# alternating (case by case, round by round), then a report with medians and the ratio
# stack/kernel. See bench/README.md.
#
#   bash bench/run.sh                 # everything, 3 rounds: docs/BENCHMARKS.md, docs/bench/*.png
#   bash bench/run.sh --quick         # 1 round, 1 s runs, 64-byte file, small counts, no micro:
#                                     # checks the harness works; report in .build/bench/quick/
#   bash bench/run.sh --rounds 5 --only nginx,redis --out /tmp/b
#   bash bench/run.sh --kernel-offloads   # the kernel pair keeps veth's offloads (TSO, GSO, GRO,
#                                         # checksums); by default both TCPs see MTU-sized frames
#
# Suites (--only): nginx (server on the stack), both (both ends on the stack), redis, httpd
# (mtcp-httpd + mtcp-load on the stack's own API), bulk, memory, multicore (1 and 2 workers or
# instances, kernel vs stack; its own section of docs/BENCHMARKS.md), observability (nginx with
# the statistics region off, on, and capture on; its own section), micro. Needs root
# (namespaces, packet sockets). Exits non-zero when any run had errors; they are in the table
# as well.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

QUICK=0
ROUNDS=""
ONLY=""
OUT=""
MICRO_FORCE=0
KERNEL_OFFLOADS=0
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --micro) MICRO_FORCE=1 ;;
        --kernel-offloads) KERNEL_OFFLOADS=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# Sizes. Quick mode only proves that every suite runs and parses.
if ((QUICK)); then
    : "${ROUNDS:=1}"
    DURATION=1                      # seconds per wrk / mtcp-load run
    NGINX_CONCURRENCY=(16)          # wrk connections: the concurrency sweep
    FIXED_CONCURRENCY=16            # the other cases
    FILES=(64.bin)                  # served files (suites 1 and 2)
    HTTPD_CORES=(1 2)               # suite 4
    SETTLE=1                        # seconds for a server to accept the last idle connections
    REDIS_REQUESTS=(2000 10000)     # -P 1, -P 16
    BULK_MIB=32
    MEMORY_COUNTS=(200)
    MULTICORE_WORKERS=(1 2)         # suite 8: server workers / instances
    MC_MODES=(close)                # suite 8: keep-alive too in a full run
    MC_QUIET_WAIT=0                 # suite 8: seconds to wait for other work to end, per case
    MC_CONCURRENCY=16
    DEFAULT_SUITES="nginx,both,redis,httpd,bulk,memory,multicore,observability"
    OUT="${OUT:-$ROOT/.build/bench/quick}"
else
    : "${ROUNDS:=3}"
    DURATION="${BENCH_DURATION:-2}"
    NGINX_CONCURRENCY=(4 32 128)
    FIXED_CONCURRENCY=32
    FILES=(64.bin 8k.bin)
    HTTPD_CORES=(1 2)
    SETTLE=3
    REDIS_REQUESTS=(100000 1000000)
    BULK_MIB="${BENCH_BULK_MIB:-512}"
    read -r -a MEMORY_COUNTS <<<"${BENCH_MEMORY_COUNTS:-10000 100000}"
    MULTICORE_WORKERS=(1 2)
    MC_MODES=(keepalive close)
    MC_QUIET_WAIT="${BENCH_MC_QUIET_WAIT:-20}"
    MC_CONCURRENCY=32
    DEFAULT_SUITES="nginx,both,redis,httpd,bulk,memory,multicore,observability,micro"
    OUT="${OUT:-$ROOT/docs}"
fi
((MICRO_FORCE)) && DEFAULT_SUITES+=",micro"
SUITES=",${ONLY:-$DEFAULT_SUITES},"
if ! [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]]; then
    echo "bench: --rounds needs a positive number, not '$ROUNDS'" >&2
    exit 2
fi
for name in ${ONLY//,/ }; do
    case "$name" in
        nginx | both | redis | httpd | bulk | memory | multicore | observability | micro) ;;
        *) echo "bench: unknown suite '$name' (nginx, both, redis, httpd, bulk, memory, multicore, observability, micro)" >&2; exit 2 ;;
    esac
done
wanted() { [[ "$SUITES" == *",$1,"* ]]; }

if [[ "$(id -u)" != 0 ]]; then
    echo "bench: needs root (network namespaces, packet sockets)" >&2
    exit 1
fi

START_TIME="$(date +%s)"
WORK="$ROOT/.build/bench/run-$$"
mkdir -p "$WORK" "$OUT"
# Scratch of earlier runs: keep the last five.
ls -dt "$ROOT"/.build/bench/run-* 2>/dev/null | tail -n +6 | xargs -r rm -rf
export BENCH_RESULTS="$WORK/results.tsv"
BENCH_FAILURES=0

# --- Dependencies and build. ---------------------------------------------------------------
# shellcheck source=scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"
# What the benchmarks need beyond building and testing (added here, installed the same way).
MTCP_APT_PACKAGES+=(nginx wrk redis-server redis-tools curl python3 python3-venv procps)
mtcp_install_deps

echo "bench: building (release)"
swift build -c release </dev/null
BIN="$(swift build -c release --show-bin-path </dev/null)"
for tool in mtcp-run libmtcp-preload.so mtcp-httpd mtcp-load; do
    [[ -e "$BIN/$tool" ]] || { echo "bench: $BIN/$tool was not built" >&2; exit 1; }
done

# Plotting: matplotlib from PyPI in a venv outside the repository.
VENV="${BENCH_VENV:-/var/cache/mtcp-bench/venv}"
if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
    echo "bench: installing matplotlib into $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check matplotlib </dev/null
fi

# shellcheck source=tests/interop/lib/netns.sh
source "$ROOT/tests/interop/lib/netns.sh"
# shellcheck source=bench/lib/common.sh
source "$ROOT/bench/lib/common.sh"
# shellcheck source=bench/lib/topology.sh
source "$ROOT/bench/lib/topology.sh"
# shellcheck source=bench/lib/suites.sh
source "$ROOT/bench/lib/suites.sh"
# shellcheck source=bench/lib/multicore.sh
source "$ROOT/bench/lib/multicore.sh"
NETNS_DIAG_ON_FAILURE=0
netns_sweep_stale bench >/dev/null 2>&1 || true

# A run may hold 100,000 sockets.
ulimit -n 1048576 2>/dev/null || ulimit -n 262144 2>/dev/null || true

printf '%s\n' "$BENCH_COLUMNS" >"$BENCH_RESULTS"
bench_machine >"$WORK/machine.txt"
bench_topology
bench_files

for suite in nginx both redis httpd bulk memory multicore observability micro; do
    if wanted "$suite"; then
        suite_start="$(date +%s)"
        run_suite "$suite"
        bench_log "suite $suite took $(($(date +%s) - suite_start)) s"
    fi
done

netns_cleanup
ELAPSED=$(($(date +%s) - START_TIME))

# --- Report. -------------------------------------------------------------------------------
COMMAND="bash bench/run.sh"
((QUICK)) && COMMAND+=" --quick"
[[ -n "$ONLY" ]] && COMMAND+=" --only $ONLY"
((KERNEL_OFFLOADS)) && COMMAND+=" --kernel-offloads"
"$VENV/bin/python" "$ROOT/bench/report.py" --results "$BENCH_RESULTS" --machine "$WORK/machine.txt" \
    --commands "$WORK/commands.txt" --micro "$WORK/micro.txt" --out "$OUT" \
    --template "$ROOT/docs/BENCHMARKS.md" --command "$COMMAND" --rounds "$ROUNDS" --elapsed "$ELAPSED"
# results.tsv: every round of a run with other suites than multicore (a multicore-only run
# leaves it alone); results-multicore.tsv and results-observability.tsv: those suites' rounds.
mkdir -p "$OUT/bench"
awk -F'\t' 'NR > 1 && $1 != "multicore" && $1 != "observability" { found = 1 } END { exit !found }' "$BENCH_RESULTS" &&
    cp "$BENCH_RESULTS" "$OUT/bench/results.tsv"
if awk -F'\t' '$1 == "multicore" { found = 1 } END { exit !found }' "$BENCH_RESULTS"; then
    awk -F'\t' 'NR == 1 || $1 == "multicore"' "$BENCH_RESULTS" >"$OUT/bench/results-multicore.tsv"
fi
if awk -F'\t' '$1 == "observability" { found = 1 } END { exit !found }' "$BENCH_RESULTS"; then
    awk -F'\t' 'NR == 1 || $1 == "observability"' "$BENCH_RESULTS" >"$OUT/bench/results-observability.tsv"
fi
echo "bench: results in $OUT ($(($(wc -l <"$BENCH_RESULTS") - 1)) runs, ${ELAPSED} s)"
if ((BENCH_FAILURES)); then
    echo "bench: FAILED: $BENCH_FAILURES run(s) had errors (marked in the table)" >&2
    exit 1
fi
echo "bench: all runs clean"
