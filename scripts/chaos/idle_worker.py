#!/usr/bin/env python3
"""A worker that does nothing but keep fd 3 open: USR1 is ignored (so the
master's USR1 forwarding does not kill it), TERM and QUIT exit 0 at once."""
import signal
import sys
import time

signal.signal(signal.SIGUSR1, lambda *_: None)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.signal(signal.SIGQUIT, lambda *_: sys.exit(0))
while True:
    time.sleep(3600)
