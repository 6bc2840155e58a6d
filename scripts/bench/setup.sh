#!/usr/bin/env bash
# Installs what the benchmarks and chaos scripts need, if missing:
#   wrk, gunicorn (and hey, optional)   Debian packages, via apt-get
#   pm2                                  npm, into a cache dir OUTSIDE the repo:
#                                        $ARBITER_BENCH_DEPS (default /tmp/arbiter-bench-deps)
# Idempotent: does nothing when everything is there.
set -euo pipefail
deps=${ARBITER_BENCH_DEPS:-/tmp/arbiter-bench-deps}
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v gunicorn >/dev/null || missing+=(gunicorn)
command -v hey >/dev/null || missing+=(hey)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  # hey is optional: install the required ones first.
  req=(); for p in "${missing[@]}"; do [ "$p" = hey ] || req+=("$p"); done
  [ ${#req[@]} -eq 0 ] || $sudo apt-get install -y -qq "${req[@]}" >&2
  $sudo apt-get install -y -qq hey >&2 || echo "setup: hey not available (optional)" >&2
fi
for t in node npm python3; do
  command -v "$t" >/dev/null || { echo "setup: $t is required" >&2; exit 1; }
done
if [ ! -x "$deps/node_modules/.bin/pm2" ]; then
  echo "setup: npm install pm2 into $deps" >&2
  npm install --silent --no-audit --no-fund --prefix "$deps" pm2 >&2
fi
echo "setup: ok (pm2 at $deps/node_modules/.bin/pm2)" >&2
