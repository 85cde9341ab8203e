#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through the Swift toolchain, with address sanitizer):
#   wire  every Wire parser on hostile bytes (FuzzWire.swift)
#   tcp   a TCP endpoint fed hostile segments around a live connection (FuzzTCP.swift)
# Each target first replays its checked-in seed corpus and the regression inputs (crashes
# found before, kept in regressions/TARGET), then fuzzes for FUZZ_SECONDS (default 15). A crash
# fails the run and leaves its input in the work directory, printed; copy it to regressions/.
#
#   bash tests/fuzz/run.sh [TARGET...]          # FUZZ_SECONDS=600 for a long run
#   FUZZ_KEEP=DIR bash tests/fuzz/run.sh        # keep the grown corpora in DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SECONDS_EACH="${FUZZ_SECONDS:-15}"
WORK="$(mktemp -d /tmp/mtcp-fuzz.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
BUILD="$WORK/build"
mkdir -p "$BUILD"
TARGETS=("$@")
((${#TARGETS[@]} > 0)) || TARGETS=(wire tcp)
# The Swift runtime's backtracer would wait on a crash; libFuzzer reports it instead.
export SWIFT_BACKTRACE=enable=no

# The modules the targets need, instrumented for coverage and address checks (the linker's
# notes about local sanitizer symbols are noise).
compile() {
    swiftc -O -sanitize=fuzzer,address -parse-as-library "$@" 2>&1 | { grep -v "ld.gold: warning" || true; }
    return "${PIPESTATUS[0]}"
}
module() {
    local name="$1"
    compile -module-name "$name" -I "$BUILD" -emit-module -emit-module-path "$BUILD/$name.swiftmodule" \
        -emit-library -static -o "$BUILD/lib$name.a" "$ROOT/Sources/$name"/*.swift
}
echo "fuzz: building Wire and TCP with -sanitize=fuzzer,address"
module Wire
module TCP
compile -I "$BUILD" -L "$BUILD" -lWire "$HERE/FuzzWire.swift" -o "$BUILD/fuzz-wire"
compile -I "$BUILD" -L "$BUILD" -lTCP -lWire "$HERE/FuzzTCP.swift" -o "$BUILD/fuzz-tcp"

failed=0
for target in "${TARGETS[@]}"; do
    binary="$BUILD/fuzz-$target"
    [[ -x "$binary" ]] || { echo "fuzz: no target '$target' (wire, tcp)" >&2; exit 2; }
    corpus="$WORK/corpus-$target"
    mkdir -p "$corpus" "$WORK/crashes-$target"
    cp "$HERE/corpus/$target"/* "$corpus"/ 2>/dev/null || true
    regressions=()
    if compgen -G "$HERE/regressions/$target/*" >/dev/null; then regressions=("$HERE/regressions/$target"/*); fi
    if ((${#regressions[@]} > 0)); then
        echo "fuzz: $target: replaying ${#regressions[@]} regression inputs"
        if ! "$binary" "${regressions[@]}" >"$WORK/$target-regressions.log" 2>&1; then
            tail -n 30 "$WORK/$target-regressions.log" >&2
            echo "fuzz: FAIL $target: a regression input crashes again" >&2
            failed=1
            continue
        fi
    fi
    echo "fuzz: $target: $SECONDS_EACH s from $(find "$corpus" -type f | wc -l) seed inputs"
    status=0
    "$binary" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$WORK/crashes-$target/" "$corpus" >"$WORK/$target.log" 2>&1 || status=$?
    grep -E "DONE +cov|stat::number_of_executed_units|stat::peak_rss_mb" "$WORK/$target.log" | sed "s/^/fuzz: $target: /"
    if ((status != 0)); then
        grep -E "Fatal error|ERROR: |SUMMARY" "$WORK/$target.log" | head -n 5 >&2
        for crash in "$WORK/crashes-$target"/*; do
            [[ -e "$crash" ]] || continue
            mkdir -p "$ROOT/tests/fuzz/found"
            cp "$crash" "$ROOT/tests/fuzz/found/"
            echo "fuzz: FAIL $target: input kept in tests/fuzz/found/$(basename "$crash") (add it to regressions/$target)" >&2
        done
        failed=1
    else
        echo "fuzz: PASS $target"
    fi
    if [[ -n "${FUZZ_KEEP:-}" ]]; then
        mkdir -p "$FUZZ_KEEP/$target"
        cp "$corpus"/* "$FUZZ_KEEP/$target"/ 2>/dev/null || true
    fi
done
if ((failed)); then
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi
echo "fuzz: ${#TARGETS[@]} passed, 0 failed"
