#!/usr/bin/env python3
"""A preforking test worker in Python 3 (standard library only), a small
gunicorn --preload: the parent "imports the app" (PRELOAD_MB of touched
memory, shared copy-on-write with its children), forks CHILDREN children that
each allocate CHILD_MB of their own, and, when fd 3 is a socket, each child
answers HTTP on it with `<child pid> of <parent pid>\\n`.

Env knobs: PRELOAD_MB (default 40), CHILD_MB (default 20), CHILDREN
(default 3), BURN_MS (default 0: a short-lived child burns this much CPU and
is reaped before the parent says it is ready), SETPGID=1 (make the parent a
process-group leader itself; arbiter's exec shim already does).

Ready: prints `forking worker <pid> ready children=<pid,pid,...>` once every
child has its memory, and sends READY=1 to NOTIFY_SOCKET when set.
TERM: the parent TERMs its children, waits for them, exits 0.
"""

import os
import signal
import socket
import sys
import time

MiB = 1024 * 1024


def touched(mb):
    # bytes of non-zero content: every page is written, so it is resident.
    return b"\x01" * (mb * MiB)


def listener():
    try:
        sock = socket.socket(fileno=3)
        sock.getsockname()
        return sock
    except OSError:
        return None


def serve(sock, parent):
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        conn, _ = sock.accept()
        try:
            conn.recv(65536)
            body = f"{os.getpid()} of {parent}\n".encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        finally:
            conn.close()


def child(sock, parent, ready_w):
    own = touched(int(os.environ.get("CHILD_MB", "20")))  # noqa: F841 (held for its memory)
    os.write(ready_w, b"x")
    os.close(ready_w)
    if sock is None:
        while True:
            time.sleep(3600)
    serve(sock, parent)


def burn(ms):
    pid = os.fork()
    if pid == 0:
        end = time.process_time() + ms / 1000
        while time.process_time() < end:
            pass
        os._exit(0)
    os.waitpid(pid, 0)


def notify_ready():
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"READY=1", path)


def main():
    if os.environ.get("SETPGID") == "1":
        os.setpgid(0, 0)
    app = touched(int(os.environ.get("PRELOAD_MB", "40")))  # noqa: F841 (the "imported app")
    burn_ms = int(os.environ.get("BURN_MS", "0"))
    if burn_ms > 0:
        burn(burn_ms)
    sock = listener()
    parent = os.getpid()
    children = []
    ready_r, ready_w = os.pipe()
    for _ in range(int(os.environ.get("CHILDREN", "3"))):
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            child(sock, parent, ready_w)
            os._exit(0)
        children.append(pid)
    os.close(ready_w)
    for _ in children:
        os.read(ready_r, 1)

    def stop(*_):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"forking worker {parent} ready children={','.join(map(str, children))}", flush=True)
    notify_ready()
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
