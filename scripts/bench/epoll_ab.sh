#!/usr/bin/env bash
# A/B for gap 1 of BENCHMARKS.md: does a process that merely epoll-waits
# (edge-triggered) on the shared listening socket cost the workers throughput?
# plain: launch.py with 2 wsgi_fd.py workers. epoll: the same plus a 3rd
# process that only waits on the socket. wrk 5 s each, 3 pairs, 127.0.0.1 only.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONDONTWRITEBYTECODE=1
launch="$here/../../tests/workers/launch.py"
for rep in 1 2 3; do
  for mode in plain epoll; do
    port=$((19000 + RANDOM % 1000))
    if [ "$mode" = plain ]; then
      python3 "$launch" --bind "127.0.0.1:$port" --workers 2 -- python3 "$here/apps/wsgi_fd.py" 2>/dev/null &
    else
      python3 "$launch" --bind "127.0.0.1:$port" --workers 3 -- python3 "$here/apps/epoll_waiter.py" 2>/dev/null &
    fi
    lp=$!
    sleep 1.5
    echo "$mode $(wrk -t1 -c16 -d5s "http://127.0.0.1:$port/" | grep Requests/sec)"
    kill -TERM "$lp"   # launch.py forwards TERM to its workers
    sleep 0.5
    kill -KILL "$lp" 2>/dev/null
    wait "$lp" 2>/dev/null
  done
done
