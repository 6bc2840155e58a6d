#!/usr/bin/env python3
"""A sync test worker for the saturation tests (standard library only): serves the
listening socket at fd 3 one connection at a time, waiting SERVICE_MS
(default 20) per request, so clients beyond the busy workers wait in the
kernel's accept queue — the signal autoscaling watches.

Memory: with ALLOC_ONCE_FILE set, the first worker to create that file
(O_EXCL) allocates ALLOC_MB MiB (default 64) once it is serving, and keeps
it; every other worker stays small. So exactly one worker goes over a
`max_worker_memory` between the two, and its replacement does not.

Prints `worker <id> pid <pid> serving` once serving, and
`worker <id> pid <pid> allocated <n> MiB` after allocating.
TERM: finish the request in hand, then exit 0 (with TERM_DELAY_MS, keep
serving that long first, so a test can see the worker while it stops).
QUIT/INT: exit at once.
"""

import os
import signal
import socket
import sys
import time

SERVICE_S = int(os.environ.get("SERVICE_MS", "20")) / 1000
WORKER = f"worker {os.environ.get('ARBITER_WORKER_ID', '?')} pid {os.getpid()}"
hoard = None


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


stop_at = None


def on_term(*_):
    global stop_at
    stop_at = time.monotonic() + int(os.environ.get("TERM_DELAY_MS", "0")) / 1000


def maybe_allocate():
    global hoard
    path = os.environ.get("ALLOC_ONCE_FILE")
    if not path:
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return
    mib = int(os.environ.get("ALLOC_MB", "64"))
    hoard = bytearray(b"x" * (mib * 1024 * 1024))  # written, so it is resident
    say(f"{WORKER} allocated {mib} MiB")


def serve(conn):
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    time.sleep(SERVICE_S)
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    sock = socket.socket(fileno=3)
    sock.settimeout(0.1)  # wake up now and then to notice TERM
    say(f"{WORKER} serving")
    maybe_allocate()
    while stop_at is None or time.monotonic() < stop_at:
        try:
            conn, _ = sock.accept()
        except (socket.timeout, BlockingIOError, InterruptedError):
            continue
        with conn:
            try:
                serve(conn)
            except OSError:
                pass


if __name__ == "__main__":
    main()
