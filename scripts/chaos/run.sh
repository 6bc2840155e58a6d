#!/usr/bin/env bash
# Runs the chaos and soak scripts (not part of the default test run); each
# prints PASS/FAIL with its numbers. Exit code: number of FAILs.
#   scripts/chaos/run.sh [--cycles N]     # N reload cycles for the soak (default 1000, ~20 min)
#   scripts/chaos/run.sh kill_storm signal_storm bad_config bad_input flood forged_state stall reload_cycles   # pick some
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cycles=1000; names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cycles) cycles=$2; shift 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(kill_storm signal_storm bad_config bad_input flood forged_state stall reload_cycles)
fails=0
for n in "${names[@]}"; do
  extra=(); [ "$n" = reload_cycles ] && extra=(--cycles "$cycles")
  "$here/../deno" run -A "$here/$n.ts" "${extra[@]}" || fails=$((fails + 1))
done
exit $fails
