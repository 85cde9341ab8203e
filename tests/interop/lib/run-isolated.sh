# shellcheck shell=bash
# run_isolated CMD...   runs CMD in a subshell with `set -euo pipefail` and leaves its exit
#                       status in ISOLATED_STATUS; returns 0 itself.
#
# Call it as a plain statement, never inside `if`, `&&` or `||`: there bash ignores set -e in
# the subshell too, and a test would pass or fail on its last command alone.
ISOLATED_STATUS=0

run_isolated() {
    set +e
    (
        set -euo pipefail
        "$@"
    )
    ISOLATED_STATUS=$?
    set -e
}
