#!/usr/bin/env python3
"""A sync worker for the autoscaling benchmark: serves the listening socket
inherited at fd 3 one connection at a time, and spends SERVICE_MS (default
20) waiting per request, as a worker waiting on a database would. It takes a
connection only when free, so waiting clients show in the kernel's accept
queue, which is what arbiter's autoscaling watches.

TERM: finish the request in hand, then exit 0. QUIT/INT: exit at once.
"""

import os
import signal
import socket
import time

SERVICE_S = int(os.environ.get("SERVICE_MS", "20")) / 1000
stopping = False


def on_term(*_):
    global stopping
    stopping = True


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    sock = socket.socket(fileno=3)
    sock.settimeout(0.2)  # wake up now and then to notice TERM
    while not stopping:
        try:
            conn, _ = sock.accept()
        except (socket.timeout, BlockingIOError, InterruptedError):
            continue
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            time.sleep(SERVICE_S)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")


if __name__ == "__main__":
    main()
