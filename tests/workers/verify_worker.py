#!/usr/bin/env python3
"""A worker for the tests of `arbiter verify` (standard library only), good or
deliberately bad, chosen by VERIFY_MODE:

- good (default): follows the whole worker contract. HTTP/1.1 keep-alive on
  the socket at fd 3; READY=1 once serving; WATCHDOG=1 every WATCHDOG_USEC/2;
  USR1 caught; on TERM it stops accepting, answers each further request with
  `Connection: close`, closes a connection idle for IDLE_S seconds (also one
  that never sent anything; the protocol suggests about a second, 3 s keeps
  the tests calm on a loaded machine), waits for its request threads and
  exits 0.
- no-ready: like good, but never sends READY=1.
- reset-on-term: like good until TERM, then exits at once with SO_LINGER 0 on
  every open connection, so each of them is reset.

LEAK=1 also starts a daemon (a double-forked `sleep` in a session of its own,
so it escapes the worker's process group, which arbiter stops with the worker)
that outlives the worker, for the "nothing left running" check.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("VERIFY_MODE", "good")
IDLE_S = 3.0
stopping = threading.Event()
connections = set()
lock = threading.Lock()


def notify(message):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_S  # a connection idle this long is closed (drain rule)

    def setup(self):
        super().setup()
        with lock:
            connections.add(self.connection)

    def finish(self):
        with lock:
            connections.discard(self.connection)
        super().finish()

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002
        pass


class Stop(Exception):
    pass


class Server(ThreadingHTTPServer):
    daemon_threads = False
    accepting = False

    def get_request(self):
        self.accepting = True
        try:
            return self.socket.accept()
        finally:
            self.accepting = False

    def handle_error(self, request, client_address):
        pass  # a client that went away is not the worker's problem


server = Server(("", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=3)


def on_term(_signum, _frame):
    if MODE == "reset-on-term":
        with lock:
            for conn in connections:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os._exit(0)
    stopping.set()
    if server.accepting:
        raise Stop()
    threading.Thread(target=server.shutdown, daemon=True).start()


def watchdog():
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    if usec <= 0 or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        return
    while not stopping.wait(usec / 2 / 1e6):
        notify("WATCHDOG=1")


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGUSR1, lambda *_: None)  # a real worker reopens its logs here
if os.environ.get("LEAK") == "1":
    subprocess.Popen(["sh", "-c", "setsid sleep 300 &"], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=())
threading.Thread(target=watchdog, daemon=True).start()
if MODE != "no-ready":
    notify("READY=1")
try:
    server.serve_forever(poll_interval=0.2)
except Stop:
    pass
server.server_close()  # joins the request threads
sys.exit(0)
