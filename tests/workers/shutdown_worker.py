#!/usr/bin/env python3
"""A worker that can kill the shared listening socket for everyone: a minimal
HTTP/1.0 server on fd 3 whose `GET /shutdown-socket` answers, then calls
shutdown(SHUT_RDWR) on the listening socket. Every accept() on a socket that
stopped listening fails (EINVAL): the worker then exits 1, as servers do.
Any other path answers `ok <pid>`.
"""

import os
import socket
import sys

listener = socket.socket(fileno=3)
print(f"worker {os.environ.get('ARBITER_WORKER_ID')} pid {os.getpid()} listening", flush=True)
while True:
    try:
        conn, _ = listener.accept()
    except OSError as e:
        print(f"accept: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    with conn:
        request = conn.recv(4096).decode(errors="replace")
        path = request.split(" ")[1] if " " in request else "/"
        body = f"ok {os.getpid()}\n".encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    if path == "/shutdown-socket":
        listener.shutdown(socket.SHUT_RDWR)
