#!/usr/bin/env bash
# Runs the benchmarks (all, or those named) and writes their tables into
# BENCHMARKS.md. Installs its tools first (setup.sh). ~12 minutes for all.
#   scripts/bench/run.sh [--reps N] [--no-write] [reload|overhead|recovery|footprint|scale]...
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/setup.sh"
export ARBITER_BENCH_DEPS=${ARBITER_BENCH_DEPS:-/tmp/arbiter-bench-deps}
export PATH="$ARBITER_BENCH_DEPS/node_modules/.bin:$PATH"
exec "$here/../deno" run -A "$here/run.ts" "$@"
