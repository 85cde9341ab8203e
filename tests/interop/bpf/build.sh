#!/usr/bin/env bash
# Compiles impair.c into a tc eBPF object.
#
#   bash tests/interop/bpf/build.sh [OUTPUT.o] [-DIMPAIR_LOSS=N -DIMPAIR_DUP=N ...]
#
# OUTPUT defaults to impair.o beside this script. Extra -D flags compile rates in, for hosts
# without bpftool (see impair.c). The compiler is the first clang that has the BPF target:
# $IMPAIR_CLANG, the Swift toolchain's clang (/opt/swift/usr/bin/clang, which has it), then
# clang on PATH. Headers: linux/bpf.h (linux-libc-dev) and bpf/bpf_helpers.h (libbpf-dev).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
output="$here/impair.o"
if [[ $# -gt 0 && "$1" != -* ]]; then
    output="$1"
    shift
fi

find_bpf_clang() {
    local candidate
    for candidate in "${IMPAIR_CLANG:-}" "${MTCP_SWIFT_BIN:-/opt/swift/usr/bin}/clang" \
        "$(command -v clang 2>/dev/null || true)"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        if "$candidate" -print-targets 2>/dev/null | grep -qw bpf; then
            echo "$candidate"
            return 0
        fi
    done
    echo "build.sh: no clang with the BPF target (tried \$IMPAIR_CLANG, the Swift toolchain's, PATH)" >&2
    return 1
}

if [[ ! -f /usr/include/bpf/bpf_helpers.h ]]; then
    echo "build.sh: /usr/include/bpf/bpf_helpers.h missing: install libbpf-dev (scripts/install-deps.sh)" >&2
    exit 1
fi

clang="$(find_bpf_clang)"
# The multiarch include directory holds asm/types.h, which linux/bpf.h needs; -target bpf
# does not search it by itself.
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
"$clang" -O2 -g -Wall -Werror -target bpf -I"/usr/include/$multiarch" "$@" \
    -c "$here/impair.c" -o "$output.tmp.$$"
mv -f "$output.tmp.$$" "$output"
echo "$output"
