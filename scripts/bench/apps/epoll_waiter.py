#!/usr/bin/env python3
"""For scripts/bench/epoll_ab.sh: under tests/workers/launch.py, worker 2
only waits on the shared listening socket with an edge-triggered epoll (what
arbiter's master does through Deno's reactor) and never accepts; the other
workers exec wsgi_fd.py."""
import os
import select

if os.environ.get("ARBITER_WORKER_ID") == "2":
    ep = select.epoll()
    ep.register(3, select.EPOLLIN | select.EPOLLET)
    while True:
        ep.poll()
else:
    here = os.path.dirname(os.path.abspath(__file__))
    os.execvp("python3", ["python3", os.path.join(here, "wsgi_fd.py")])
