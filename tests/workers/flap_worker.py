#!/usr/bin/env python3
"""A worker that leaves right after it is ready, for restart-storm tests.

FLAP=exit: sends READY=1, then exits 0 at once.
FLAP=stopping: sends READY=1, then STOPPING=1, then lingers (ignoring TERM)
until killed — the worst case for a slot's stopping workers.
Prints `flap <pid>` at start, so a test can count the starts.
"""

import os
import signal
import socket
import sys
import time


def notify(msg):
    path = os.environ.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), path)


print(f"flap {os.getpid()}", flush=True)
notify("READY=1")
if os.environ.get("FLAP") == "stopping":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    notify("STOPPING=1")
    time.sleep(3600)
sys.exit(0)
