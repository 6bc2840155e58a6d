"""A WSGI app for the gunicorn recipe (docs/recipes.md): `gunicorn wsgi:app`."""

import os

WORKER_ID = os.environ.get("ARBITER_WORKER_ID", "?")


def app(environ, start_response):
    body = f"hello from gunicorn worker {WORKER_ID}\n".encode()
    start_response("200 OK", [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
