#!/usr/bin/env bash
# Builds the C examples against shim/include and libmtcp.so (swift build -c release first).
#
#   bash shim/examples/build.sh [OUTDIR]     (default: .build/release, where libmtcp.so is)
#   MTCP_LIB_DIR=DIR bash shim/examples/build.sh   to link with a libmtcp.so elsewhere
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LIB_DIR="${MTCP_LIB_DIR:-$ROOT/.build/release}"
OUT="${1:-$LIB_DIR}"
if [[ ! -f "$LIB_DIR/libmtcp.so" ]]; then
    echo "build.sh: $LIB_DIR/libmtcp.so is missing; build it with: swift build -c release --product mtcp" >&2
    exit 2
fi
mkdir -p "$OUT"
for example in epserver epwget; do
    gcc -std=gnu11 -O2 -Wall -Wextra -Werror -I "$ROOT/shim/include" -o "$OUT/$example" "$HERE/$example.c" \
        -L "$LIB_DIR" -lmtcp -Wl,-rpath,"$LIB_DIR" -lpthread
    echo "built $OUT/$example"
done
