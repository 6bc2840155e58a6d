#!/usr/bin/env python3
"""A stand-in for the arbiter master in harness tests: binds listening
sockets, hands them to a worker at fds 3, 4, ... with the systemd
socket-activation variables, and execs the worker (same pid).

    launch.py [--bind HOST:PORT | --bind [V6]:PORT | --bind unix:PATH]...
              [--workers N] [--nonblocking] -- command [args...]

- PORT 0 picks a free port; each bound address is printed to stderr as
  `launch: fd 3 = 127.0.0.1:43210` before the worker starts.
- `--workers 1` (the default) execs the command in place: the worker has the
  launcher's pid. With N > 1 the launcher stays as a parent, forks N workers
  sharing the sockets (ARBITER_WORKER_ID 0..N-1), forwards TERM, INT, QUIT and
  USR1 to them, and exits 0 once all have exited (or with the first non-zero
  exit code).
- `--nonblocking` sets O_NONBLOCK on the sockets (to test the trap).
"""

import fcntl
import os
import signal
import socket
import sys


def parse(argv):
    binds, workers, nonblocking = [], 1, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return binds, workers, nonblocking, argv[i + 1:]
        if a == "--bind":
            binds.append(argv[i + 1])
            i += 2
        elif a == "--workers":
            workers = int(argv[i + 1])
            i += 2
        elif a == "--nonblocking":
            nonblocking = True
            i += 1
        else:
            sys.exit(f"launch: unknown argument {a!r}")
    sys.exit("launch: missing -- command")


def bind(spec):
    if spec.startswith("unix:"):
        path = spec[5:]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(128)
        return s, "unix:" + path
    host, _, port = spec.rpartition(":")
    if host.startswith("["):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        host = host[1:-1]
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(128)
    name = s.getsockname()
    shown = f"[{name[0]}]:{name[1]}" if s.family == socket.AF_INET6 else f"{name[0]}:{name[1]}"
    return s, shown


def main():
    binds, workers, nonblocking, cmd = parse(sys.argv[1:])
    if not binds:
        binds = ["127.0.0.1:0"]
    socks = [bind(b) for b in binds]
    shown = [name for _, name in socks]
    # Move the sockets out of the way first (F_DUPFD >= 100), then down to 3, 4, ...
    moved = [fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, 100) for sock, _ in socks]
    for sock, _ in socks:
        sock.close()
    for i, fd in enumerate(moved):
        os.dup2(fd, 3 + i, inheritable=True)
        os.close(fd)
        if nonblocking:
            fl = fcntl.fcntl(3 + i, fcntl.F_GETFL)
            fcntl.fcntl(3 + i, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    for i, name in enumerate(shown):
        print(f"launch: fd {3 + i} = {name}", file=sys.stderr, flush=True)
    os.environ["LISTEN_FDS"] = str(len(shown))
    os.environ["LISTEN_FDNAMES"] = ":".join(b.replace(":", "_") for b in binds)

    def exec_worker(wid):
        os.environ["LISTEN_PID"] = str(os.getpid())
        os.environ["ARBITER_WORKER_ID"] = str(wid)
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            print(f"launch: cannot exec {cmd[0]}: {e}", file=sys.stderr, flush=True)
            os._exit(127)

    if workers <= 1:
        exec_worker(0)

    pids = []
    for wid in range(workers):
        pid = os.fork()
        if pid == 0:
            exec_worker(wid)
        pids.append(pid)

    def forward(sig, _frame):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(sig, forward)
    code = 0
    left = set(pids)
    while left:
        pid, status = os.wait()
        left.discard(pid)
        rc = os.waitstatus_to_exitcode(status)
        print(f"launch: worker pid {pid} exited with {rc}", file=sys.stderr, flush=True)
        if rc != 0 and code == 0:
            code = rc if rc > 0 else 128 - rc
    sys.exit(code)


if __name__ == "__main__":
    main()
