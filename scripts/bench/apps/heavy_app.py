"""A heavy WSGI app for the heavy-app benchmark (scripts/bench/heavy.ts): its
import burns HEAVY_IMPORT_CPU_S of CPU (default 0.4 s) and holds
HEAVY_IMPORT_MB of memory (default 30 MB, every page written), like a large
framework app or a model loaded at start; each request burns about
HEAVY_REQUEST_CPU_MS of CPU (default 1 ms)."""

import os
import time

_IMPORT_CPU_S = float(os.environ.get("HEAVY_IMPORT_CPU_S", "0.4"))
_REQUEST_CPU_S = float(os.environ.get("HEAVY_REQUEST_CPU_MS", "1")) / 1000

_end = time.process_time() + _IMPORT_CPU_S
while time.process_time() < _end:
    pass
# Written bytes, so the pages are resident (and shared copy-on-write after a fork).
STATE = b"\x01" * (int(os.environ.get("HEAVY_IMPORT_MB", "30")) * 1024 * 1024)
_BODY = b"heavy\n"


def app(environ, start_response):
    end = time.process_time() + _REQUEST_CPU_S
    while time.process_time() < end:
        pass
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(_BODY)))])
    return [_BODY]
