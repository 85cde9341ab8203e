#!/usr/bin/env bash
# The unit tests and the preload library's socket-semantics tests under AddressSanitizer and
# ThreadSanitizer. A command of its own, not a step of scripts/test.sh: two more builds of
# everything and the suites several times slower would take CI past its 30 minutes. (The test
# command does run the preload library under ThreadSanitizer with two instances per process,
# step_preload_tsan, and the fuzz targets under AddressSanitizer.)
#
#   bash scripts/test-sanitizers.sh              # address, then thread
#   bash scripts/test-sanitizers.sh address      # one of them
#   SANITIZE_UNIT_FILTER=REGEX                   # only the unit tests matching (swift test --filter)
#   SANITIZE_SKIP_PRELOAD=1                      # unit tests only (the preload tests need root)
#
# Each sanitizer builds into .build/<sanitizer> (release, so that the simulation suites finish),
# runs `swift test` there, then tests/preload/test-preload.sh with that build of the library,
# the sanitizer's runtime preloaded in front of it. Any report fails the run (halt_on_error).
# Ends with "test-sanitizers: N passed, M failed" (suites).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"
mtcp_install_deps

SANITIZERS=("$@")
((${#SANITIZERS[@]} > 0)) || SANITIZERS=(address thread)
for sanitizer in "${SANITIZERS[@]}"; do
    case "$sanitizer" in
        address | thread) ;;
        *)
            echo "test-sanitizers: address or thread, not '$sanitizer'" >&2
            exit 2
            ;;
    esac
done

TOOLCHAIN="$(dirname "$(dirname "$(realpath "$(command -v swift)")")")"
# runtime_of SANITIZER  the toolchain's shared runtime a preloaded library needs in front of it.
runtime_of() {
    local name
    case "$1" in
        address) name='libclang_rt.asan-x86_64.so' ;;
        thread) name='libclang_rt.tsan-x86_64.so' ;;
    esac
    find "$TOOLCHAIN/lib" -name "$name" | head -n 1
}
DISPATCH="$(find "$TOOLCHAIN/lib/swift/linux" -name libdispatch.so | head -n 1)"

# Leaks are not checked: the preload library keeps its runtime for the life of the process on
# purpose (hooks run until the last instruction), and the test programs exit with sockets open.
ASAN_SETTINGS="halt_on_error=1:detect_leaks=0:abort_on_error=0"
# A forked child may start threads (the library's driver thread) after fork.
TSAN_SETTINGS="halt_on_error=1 die_after_fork=0"

PASSED=0
FAILED=0
FAILURES=()
result() {
    if (($2 == 0)); then
        PASSED=$((PASSED + 1))
        echo "test-sanitizers: PASS $1"
    else
        FAILED=$((FAILED + 1))
        FAILURES+=("$1")
        echo "test-sanitizers: FAIL $1"
    fi
}

for sanitizer in "${SANITIZERS[@]}"; do
    build="$ROOT/.build/$sanitizer"
    started=$SECONDS
    echo "==> $sanitizer: building into $build"
    swift build --build-tests -c release --sanitize="$sanitizer" --build-path "$build" </dev/null
    echo "==> $sanitizer: unit tests (built in $((SECONDS - started)) s)"
    started=$SECONDS
    filter=()
    [[ -n "${SANITIZE_UNIT_FILTER:-}" ]] && filter=(--filter "$SANITIZE_UNIT_FILTER")
    status=0
    ASAN_OPTIONS="$ASAN_SETTINGS" TSAN_OPTIONS="$TSAN_SETTINGS" \
        swift test --skip-build -c release --sanitize="$sanitizer" --build-path "$build" "${filter[@]}" \
        </dev/null || status=$?
    result "unit tests under $sanitizer sanitizer ($((SECONDS - started)) s)" "$status"

    [[ "${SANITIZE_SKIP_PRELOAD:-0}" == 1 ]] && continue
    runtime="$(runtime_of "$sanitizer")"
    if [[ -z "$runtime" || -z "$DISPATCH" ]]; then
        result "preload tests under $sanitizer sanitizer: the toolchain has no $sanitizer runtime" 1
        continue
    fi
    started=$SECONDS
    status=0
    # libdispatch loads with the runtime, as the library's Swift runtime expects it to.
    ASAN_OPTIONS="$ASAN_SETTINGS" TSAN_OPTIONS="$TSAN_SETTINGS" \
        MTCP_BIN="$build/release" MTCP_PRELOAD_RUNTIME="$runtime $DISPATCH" MTCP_PRELOAD_CORES=2 \
        bash "$ROOT/tests/preload/test-preload.sh" </dev/null || status=$?
    result "preload tests under $sanitizer sanitizer, two instances per process ($((SECONDS - started)) s)" "$status"
done

if ((FAILED > 0)); then echo "test-sanitizers: failed: ${FAILURES[*]}"; fi
echo "test-sanitizers: $PASSED passed, $FAILED failed"
((FAILED == 0))
