#!/usr/bin/env python3
"""Serve wsgi_app:app with the standard library (wsgiref) on the listening
socket inherited at fd 3 (systemd socket activation, as arbiter and
tests/workers/launch.py hand it over). One request at a time, like gunicorn's
sync worker, and, like it, the shared socket is switched to non-blocking so a
connection taken by another worker never blocks this one in accept().

TERM: finish the request in hand, then exit 0 (never drops an accepted
connection). QUIT/INT: exit at once.
"""

import os
import select
import signal
import socket
import sys
import wsgiref.simple_server

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgi_app import app  # noqa: E402

stopping = False


def on_term(*_):
    global stopping
    stopping = True


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    sock = socket.socket(fileno=3)
    sock.setblocking(False)
    server = wsgiref.simple_server.WSGIServer(("", 0), QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    host, port = sock.getsockname()[:2]
    server.server_name, server.server_port = host, port
    server.setup_environ()
    server.set_app(app)
    while not stopping:
        try:
            r, _, _ = select.select([sock], [], [], 0.2)
        except InterruptedError:
            continue
        if not r or stopping:
            continue
        try:
            conn, addr = sock.accept()
        except (BlockingIOError, InterruptedError):
            continue  # another worker took it
        conn.setblocking(True)
        try:
            server.finish_request(conn, addr)
        except Exception:
            pass
        finally:
            server.shutdown_request(conn)
    os._exit(0)


if __name__ == "__main__":
    main()
