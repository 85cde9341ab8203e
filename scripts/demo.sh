#!/usr/bin/env bash
# The project's main job today: build the simulation demo (release) and run it. A TCP transfer
# runs over a simulated lossy link in simulated time; the demo prints its statistics.
# Arguments are passed to mtcp-sim-demo unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"
mtcp_install_deps

echo "demo.sh: building mtcp-sim-demo (release)"
swift build -c release --product mtcp-sim-demo </dev/null
BIN="$(swift build -c release --show-bin-path </dev/null)"
echo "demo.sh: running $BIN/mtcp-sim-demo $*"
exec "$BIN/mtcp-sim-demo" "$@"
