"""A Python worker for arbiter, standard library only: ThreadingHTTPServer on
the socket handed over at fd 3, READY=1 over NOTIFY_SOCKET when it is set,
graceful stop on TERM (in-flight requests finish, then exit 0).

The socket stays in blocking mode: it is shared with the other workers, and
O_NONBLOCK would change it for all of them (Python socket timeouts set it).
"""

import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORKER_ID = os.environ.get("ARBITER_WORKER_ID", "?")


def notify(message):
    """Send an sd_notify message (READY=1, STOPPING=1, ...) if NOTIFY_SOCKET is set."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(message.encode(), path)
    except OSError as e:
        print(f"notify: {e}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    # Seconds a client may take to send its request: a connection opened and
    # left silent would otherwise hold the drain on TERM until SIGKILL (the
    # drain itself cuts this to 1 s, see close_silent).
    timeout = 5

    def setup(self):
        super().setup()
        self.server.silent[self.connection] = time.monotonic()

    def parse_request(self):  # the request line has arrived
        self.server.silent.pop(self.connection, None)
        return super().parse_request()

    def finish(self):
        self.server.silent.pop(self.connection, None)
        super().finish()

    def do_GET(self):
        body = f"hello from python worker {WORKER_ID}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # quiet; arbiter logs the lifecycle


class Stop(Exception):
    pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight
    accepting = False
    silent = {}  # connections that have not sent a request yet -> since when

    def get_request(self):
        # Another worker may win the race for a connection, leaving this one
        # blocked in accept(): TERM then interrupts it (see on_term). But TERM
        # may also be handled just after accept() returned: the new fd is put
        # in `got` from C code (extend over map), where no signal handler can
        # run, so that connection is still served instead of being dropped.
        got = []
        self.accepting = True
        try:
            got.extend(map(socket.socket._accept, [self.socket]))
        except Stop:
            if not got:
                raise
            threading.Thread(target=self.shutdown, daemon=True).start()
        finally:
            self.accepting = False
        fd, address = got[0]
        return socket.socket(self.socket.family, self.socket.type, fileno=fd), address


server = Server(("", 0), Handler, bind_and_activate=False)
server.socket = socket.socket(fileno=3)  # family and type read from the fd


def on_term(_signum, _frame):
    if server.accepting:
        raise Stop()  # nothing accepted yet: leave accept() at once
    threading.Thread(target=server.shutdown, daemon=True).start()


def close_silent():
    """End the connections that stay silent for 1 s (never sooner: a client
    that just connected is sending its request). SHUT_RD makes the blocked
    read in their handler return at once, as if the client had closed."""
    while server.silent:
        for conn, since in list(server.silent.items()):
            if time.monotonic() - since >= 1:
                try:
                    conn.shutdown(socket.SHUT_RD)
                except OSError:
                    pass  # closed meanwhile
        time.sleep(0.1)


signal.signal(signal.SIGTERM, on_term)
# arbiter forwards USR1 to every worker to reopen log files (after rotation);
# its default action ends the process. This worker writes no log file, so
# there is nothing to reopen: ignore it.
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
notify("READY=1")
try:
    server.serve_forever(poll_interval=0.2)
except Stop:
    pass
notify("STOPPING=1")
close_silent()
server.server_close()  # closes the listening socket, joins request threads
sys.exit(0)
