#!/usr/bin/env bash
# Reload under load for every shipped worker (BENCHMARKS.md, "Shipped workers"):
# for each example and each connection mode, wrk runs 10 s against 2 workers
# while the master gets 6 HUPs, one every 1.3 s. Prints one table row per run.
# Needs wrk, and the runtimes of the examples (go builds examples/go first).
# Usage: scripts/bench/shipped_reload.sh [PORT]
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${1:-18600}
deno_dir=$(dirname "$(./scripts/deno eval 'console.log(Deno.execPath())')")
export PATH="$deno_dir:$PATH"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd examples/go && go build -o "$tmp/goapp" .)

run() { # name config [-- command...]
  local name=$1 config=$2
  shift 2
  for mode in close keep-alive; do
    local header=()
    [ "$mode" = close ] && header=(-H "Connection: close")
    ./scripts/deno run -A main.ts --config "$config" -w 2 -b "127.0.0.1:$port" "$@" \
      >"$tmp/master.log" 2>&1 &
    local master=$!
    until curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1; do sleep 0.1; done
    sleep 1
    wrk -t2 -c16 -d10s --timeout 2s "${header[@]}" "http://127.0.0.1:$port/" >"$tmp/wrk.txt" &
    local load=$!
    for _ in 1 2 3 4 5 6; do sleep 1.3; kill -HUP "$master"; done
    wait "$load"
    kill -TERM "$master"
    wait "$master" || true
    local total errors non2xx
    total=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")
    errors=$(awk '/Socket errors/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i} END {print s + 0}' "$tmp/wrk.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.txt")
    echo "| $name | $mode | $((${errors:-0} + ${non2xx:-0})) / $total | $(grep -o 'Socket errors.*' "$tmp/wrk.txt" || echo 'no socket errors') |"
  done
}

run "examples/hello.ts" examples/app.toml
run "examples/deno" examples/deno/app.toml
run "examples/node" examples/node/app.toml
run "examples/go" examples/go/app.toml -- "$tmp/goapp"
run "examples/python" examples/python/app.toml
run "examples/ruby" examples/ruby/app.toml
