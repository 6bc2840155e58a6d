"""The WSGI app of the benchmarks: one tiny response, same code under every
supervisor (gunicorn directly, gunicorn as an arbiter worker, wsgi_fd.py)."""

BODY = b"hello\n"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
