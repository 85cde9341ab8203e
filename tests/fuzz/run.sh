#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through the Swift toolchain, with address sanitizer):
#   wire     every Wire parser on hostile bytes (FuzzWire.swift)
#   tcp      a TCP endpoint fed hostile segments around a live connection (FuzzTCP.swift)
#   preload  the preload library's argument handling: descriptor table, settings, socket
#            addresses, iovecs, socket options, epoll_ctl (FuzzPreload.swift)
#   stack    a whole NetworkStack fed hostile frames around live connections (FuzzStack.swift)
# Each target first replays its checked-in seed corpus and the regression inputs (crashes
# found before, kept in regressions/TARGET), then fuzzes for FUZZ_SECONDS (default 10). A crash
# fails the run and leaves its input in the work directory, printed; copy it to regressions/.
#
#   bash tests/fuzz/run.sh [TARGET...]          # FUZZ_SECONDS=600 for a long run
#   FUZZ_KEEP=DIR bash tests/fuzz/run.sh        # keep the grown corpora in DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SRC="$ROOT/Sources"
SECONDS_EACH="${FUZZ_SECONDS:-10}"
WORK="$(mktemp -d /tmp/mtcp-fuzz.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
BUILD="$WORK/build"
mkdir -p "$BUILD"
TARGETS=("$@")
((${#TARGETS[@]} > 0)) || TARGETS=(wire tcp preload stack)
for target in "${TARGETS[@]}"; do
    case "$target" in
        wire | tcp | preload | stack) ;;
        *) echo "fuzz: no target '$target' (wire, tcp, preload, stack)" >&2; exit 2 ;;
    esac
done
# The Swift runtime's backtracer would wait on a crash; libFuzzer reports it instead.
export SWIFT_BACKTRACE=enable=no

# The modules the targets need, instrumented for coverage and address checks, each a whole
# module (faster than file by file); warnings are the package build's business, and the
# linker's notes about local sanitizer symbols are noise.
compile() {
    swiftc -O -wmo -suppress-warnings -sanitize=fuzzer,address -parse-as-library -I "$BUILD" -L "$BUILD" "$@" 2>&1 |
        { grep -v "ld.gold: warning" || true; }
    return "${PIPESTATUS[0]}"
}
module() {
    local name="$1"
    shift
    compile -module-name "$name" -emit-module -emit-module-path "$BUILD/$name.swiftmodule" \
        -emit-library -static -o "$BUILD/lib$name.a" "$@"
}
# CShim is C: compiled with clang's matching flags, shown to Swift through a module map.
cshim() {
    mkdir -p "$BUILD/CShim"
    printf 'module CShim {\n    header "%s"\n    export *\n}\n' "$SRC/CShim/include/CShim.h" >"$BUILD/CShim/module.modulemap"
    clang -O2 -fsanitize=address,fuzzer-no-link -I "$SRC/CShim/include" -c "$SRC/CShim/shim.c" -o "$BUILD/shim.o"
    llvm-ar rcs "$BUILD/libCShim.a" "$BUILD/shim.o"
}
# Builds run two at a time: each stage's jobs need only earlier stages.
stage() {
    local pids=() status=0 job
    for job in "$@"; do
        "$job" &
        pids+=($!)
    done
    for job in "${pids[@]}"; do wait "$job" || status=1; done
    return "$status"
}
wants() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
when() { if wants "$1"; then "$2"; fi; }
STACK_LIBS=(-I "$BUILD/CShim" -lStack -lPacketIO -lTelemetry -lTCP -lWire -lCShim)
build_wire() { module Wire "$SRC"/Wire/*.swift; }
build_tcp() { module TCP "$SRC"/TCP/*.swift; }
# What the stack needs beside Wire and TCP, and the preload target's pure parts of
# PacketIODPDK and StackRuntime (settings, socket addresses, DPDK argument text; not their
# backends).
build_small() {
    cshim
    module Telemetry -I "$BUILD/CShim" "$SRC"/Telemetry/*.swift
    module PreloadState "$SRC"/PreloadState/*.swift
    module PacketIODPDK "$SRC/PacketIODPDK/DPDKConfiguration.swift"
}
build_packetio() { module PacketIO -I "$BUILD/CShim" "$SRC"/PacketIO/*.swift; }
build_stack() { module Stack -I "$BUILD/CShim" "$SRC"/Stack/*.swift; }
build_runtime() {
    module StackRuntime -I "$BUILD/CShim" "$SRC"/StackRuntime/{StackOptions,ConfigFile,MTCPSettings,InetSocketAddress,KernelAddresses}.swift
}
link_wire() { compile -lWire "$HERE/FuzzInput.swift" "$HERE/FuzzWire.swift" -o "$BUILD/fuzz-wire"; }
link_tcp() { compile -lTCP -lWire "$HERE/FuzzInput.swift" "$HERE/FuzzTCP.swift" -o "$BUILD/fuzz-tcp"; }
link_stack() { compile "${STACK_LIBS[@]}" "$HERE/FuzzInput.swift" "$HERE/FuzzStack.swift" -o "$BUILD/fuzz-stack"; }
link_preload() {
    compile -lStackRuntime -lPacketIODPDK -lPreloadState "${STACK_LIBS[@]}" "$HERE/FuzzInput.swift" "$HERE/FuzzPreload.swift" \
        -o "$BUILD/fuzz-preload"
}
late_wire() { when wire link_wire; }
late_tcp() { when tcp link_tcp; }
late_stack() { when stack link_stack; }
late_preload() { when preload link_preload; }
started=$SECONDS
echo "fuzz: building with -sanitize=fuzzer,address (${TARGETS[*]})"
if wants preload || wants stack; then
    stage build_wire build_small
    stage build_tcp build_packetio
    stage build_stack late_wire
    stage build_runtime late_stack
    stage late_preload late_tcp
else
    build_wire
    tcp_both() { when tcp build_tcp && late_tcp; }
    stage late_wire tcp_both
fi
echo "fuzz: built in $((SECONDS - started)) s"

# One target: the regression inputs, then the corpus and FUZZ_SECONDS of fuzzing; what it says
# goes to WORK/TARGET.report, its verdict to the exit status.
run_target() {
    local target="$1" binary="$BUILD/fuzz-$1" corpus="$WORK/corpus-$1" status=0 crash
    mkdir -p "$corpus" "$WORK/crashes-$target"
    cp "$HERE/corpus/$target"/* "$corpus"/ 2>/dev/null || true
    local regressions=()
    if compgen -G "$HERE/regressions/$target/*" >/dev/null; then regressions=("$HERE/regressions/$target"/*); fi
    if ((${#regressions[@]} > 0)); then
        echo "fuzz: $target: replaying ${#regressions[@]} regression inputs"
        if ! "$binary" "${regressions[@]}" >"$WORK/$target-regressions.log" 2>&1; then
            tail -n 30 "$WORK/$target-regressions.log"
            echo "fuzz: FAIL $target: a regression input crashes again"
            return 1
        fi
    fi
    echo "fuzz: $target: $SECONDS_EACH s from $(find "$corpus" -type f | wc -l) seed inputs"
    # The settings' parsers compare whole words, which a dictionary gives the fuzzer at once.
    local options=()
    if [[ -f "$HERE/$target.dict" ]]; then options+=(-dict="$HERE/$target.dict"); fi
    "$binary" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${options[@]}" \
        -artifact_prefix="$WORK/crashes-$target/" "$corpus" >"$WORK/$target.log" 2>&1 || status=$?
    { grep -E "DONE +cov|stat::number_of_executed_units|stat::peak_rss_mb" "$WORK/$target.log" || true; } |
        sed "s/^/fuzz: $target: /"
    if [[ -n "${FUZZ_KEEP:-}" ]]; then
        mkdir -p "$FUZZ_KEEP/$target"
        cp "$corpus"/* "$FUZZ_KEEP/$target"/ 2>/dev/null || true
    fi
    if ((status != 0)); then
        { grep -E "Fatal error|ERROR: |SUMMARY" "$WORK/$target.log" || true; } | head -n 5
        for crash in "$WORK/crashes-$target"/*; do
            [[ -e "$crash" ]] || continue
            mkdir -p "$ROOT/tests/fuzz/found"
            cp "$crash" "$ROOT/tests/fuzz/found/"
            echo "fuzz: FAIL $target: input kept in tests/fuzz/found/$(basename "$crash") (add it to regressions/$target)"
        done
        return 1
    fi
    echo "fuzz: PASS $target"
}

# Two targets at a time, one core each; their reports in the order asked for.
failed=0
for ((k = 0; k < ${#TARGETS[@]}; k += 2)); do
    pair=("${TARGETS[@]:k:2}")
    pids=()
    for target in "${pair[@]}"; do
        run_target "$target" >"$WORK/$target.report" 2>&1 &
        pids+=($!)
    done
    for n in "${!pair[@]}"; do
        wait "${pids[n]}" || failed=$((failed + 1))
        cat "$WORK/${pair[n]}.report"
    done
done
echo "fuzz: $((${#TARGETS[@]} - failed)) passed, $failed failed"
((failed == 0))
