#!/usr/bin/env python3
"""A test worker in Python 3 (standard library only): serves HTTP on every
socket the master handed over (fds 3 ... 3+LISTEN_FDS-1; fd 3 alone when
LISTEN_FDS is unset), with a ThreadingHTTPServer per socket.

Routes:
- GET /            -> JSON: pid, ppid, pgid, worker_id, listen_fds, listen_pid,
                      listen_fdnames, fd, uid, gid, cwd, umask, env, lang "python".
- GET /slow?ms=N   -> prints `worker <id> pid <pid> slow start` to stdout,
                      waits N ms, then answers `slow done`.
- GET /fds         -> JSON [{fd, target}] from /proc/self/fd.
- GET /exit?code=N -> answers, then exits with code N.
- GET /stop-watchdog -> stops sending WATCHDOG=1 (see below).

Signals: TERM -> stop accepting, finish in-flight requests, exit 0.
QUIT -> exit 0 at once. USR1 -> prints `worker <id> pid <pid> got USR1`.

Env knobs: IGNORE_TERM=1, IGNORE_QUIT=1, EXIT_AT_BOOT=<code>,
BOOT_DELAY_MS=<n>; with NOTIFY_SOCKET set: NOTIFY_READY=1 sends READY=1 once
serving, WATCHDOG_PING=1 sends WATCHDOG=1 every WATCHDOG_USEC/3 (and prints
`first watchdog ping` once, after the first); PING_STATUS=<text> sends
STATUS=<text> with every ping, so `ctl status` shows once the master has read one.
Prints `worker <id> pid <pid> listening` once serving.

The inherited sockets are used as they are: accept() is blocking when the
master hands them over blocking (as systemd does). The blocking mode is never
changed here; a non-blocking socket only gets a warning on stderr. Because a
blocking accept() cannot be interrupted, the accept loops run in daemon
threads that poll before accepting; on TERM they stop, the request threads
(non-daemon) are joined, and the process exits 0.
"""

import fcntl
import http.server
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import urllib.parse

ENV = os.environ
WORKER_ID = ENV.get("ARBITER_WORKER_ID", "?")


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def int_or_none(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def umask():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return line.split()[1]
    return None


def list_fds():
    out = []
    for name in os.listdir("/proc/self/fd"):
        try:
            out.append({"fd": int(name), "target": os.readlink(f"/proc/self/fd/{name}")})
        except OSError:
            pass  # the fd of the directory listing itself is gone by now
    return sorted(out, key=lambda e: e["fd"])


stopping = threading.Event()
watchdog_on = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a draining worker has no idle
    # keep-alive connection to wait for.
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args):  # noqa: A002 - quiet by default
        pass

    def address_string(self):
        return str(self.client_address)

    def send_body(self, status, ctype, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/":
            self.send_body(200, "application/json", json.dumps({
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "pgid": os.getpgid(0),
                "worker_id": int_or_none(ENV.get("ARBITER_WORKER_ID")),
                "listen_fds": int_or_none(ENV.get("LISTEN_FDS")),
                "listen_pid": int_or_none(ENV.get("LISTEN_PID")),
                "listen_fdnames": ENV.get("LISTEN_FDNAMES"),
                "fd": self.server.listen_fd,
                "uid": os.getuid(),
                "gid": os.getgid(),
                "cwd": os.getcwd(),
                "umask": umask(),
                "env": dict(os.environ),
                "lang": "python",
            }))
        elif url.path == "/slow":
            ms = int(q.get("ms", ["1000"])[0])
            say(f"worker {WORKER_ID} pid {os.getpid()} slow start")
            time.sleep(ms / 1000)
            self.send_body(200, "text/plain", "slow done")
        elif url.path == "/fds":
            self.send_body(200, "application/json", json.dumps(list_fds()))
        elif url.path == "/exit":
            code = int(q.get("code", ["0"])[0])
            self.send_body(200, "text/plain", f"exiting with {code}")
            sys.stdout.flush()
            os._exit(code)
        elif url.path == "/stop-watchdog":
            watchdog_on.clear()
            self.send_body(200, "text/plain", "watchdog stopped")
        else:
            self.send_body(404, "text/plain", "not found")


class InheritedHTTPServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer on an already listening, inherited socket."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, fd):
        super().__init__(("", 0), Handler, bind_and_activate=False)
        self.socket.close()  # the unbound socket the base class made
        self.socket = socket.socket(fileno=fd)  # family and type read from the fd
        self.listen_fd = fd
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK:
            print(f"py_worker: warning: inherited fd {fd} is non-blocking (O_NONBLOCK)",
                  file=sys.stderr, flush=True)
        self.server_address = self.socket.getsockname()

    def accept_loop(self):
        poller = select.poll()
        poller.register(self.socket, select.POLLIN)
        while not stopping.is_set():
            if not poller.poll(100):
                continue
            if stopping.is_set():
                break
            # Another worker may have taken the connection: with a blocking
            # socket this accept() then waits for the next one (this thread is
            # a daemon, so it never holds up the exit).
            self._handle_request_noblock()

    def handle_error(self, request, client_address):
        pass  # a client that went away is not our problem


def notify(msg):
    path = ENV.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), path)


def watchdog_loop():
    usec = int_or_none(ENV.get("WATCHDOG_USEC")) or 0
    interval = max(usec / 3 / 1e6, 0.01) if usec else 1.0
    status = ENV.get("PING_STATUS")
    message = "WATCHDOG=1" + (f"\nSTATUS={status}" if status else "")
    first = True
    while not stopping.wait(interval):
        if watchdog_on.is_set():
            try:
                notify(message)
            except OSError as e:
                print(f"py_worker: notify failed: {e}", file=sys.stderr, flush=True)
                continue
            if first:
                # Tests wait for this: the master's watchdog is armed only
                # from the first ping on.
                say(f"worker {WORKER_ID} pid {os.getpid()} first watchdog ping")
                first = False


def main():
    code = int_or_none(ENV.get("EXIT_AT_BOOT"))
    if code is not None:
        sys.stdout.flush()
        os._exit(code)

    signal.signal(signal.SIGTERM,
                  signal.SIG_IGN if ENV.get("IGNORE_TERM") == "1" else lambda *_: stopping.set())
    if ENV.get("IGNORE_QUIT") == "1":
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGQUIT, lambda *_: (sys.stdout.flush(), os._exit(0)))
    signal.signal(signal.SIGUSR1, lambda *_: say(f"worker {WORKER_ID} pid {os.getpid()} got USR1"))

    delay = int_or_none(ENV.get("BOOT_DELAY_MS"))
    if delay:
        time.sleep(delay / 1000)

    nfds = int_or_none(ENV.get("LISTEN_FDS")) or 1
    servers = [InheritedHTTPServer(3 + i) for i in range(nfds)]
    accepters = [threading.Thread(target=s.accept_loop, daemon=True) for s in servers]
    for t in accepters:
        t.start()
    say(f"worker {WORKER_ID} pid {os.getpid()} listening")
    if ENV.get("NOTIFY_READY") == "1":
        notify("READY=1")
    if ENV.get("WATCHDOG_PING") == "1":
        watchdog_on.set()
        threading.Thread(target=watchdog_loop, daemon=True).start()

    # Short waits: a signal handler only runs between them.
    while not stopping.wait(0.1):
        pass
    # Graceful stop: the accept loops see `stopping` within one poll; then
    # in-flight requests finish and the process exits 0.
    for t in accepters:
        t.join(0.5)
    # Request threads are non-daemon: wait for every one of them.
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
