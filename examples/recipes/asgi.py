"""An ASGI app for the uvicorn recipe (docs/recipes.md): `uvicorn --fd 3 asgi:app`."""

import os

WORKER_ID = os.environ.get("ARBITER_WORKER_ID", "?")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # lifespan events: nothing to set up
    body = f"hello from uvicorn worker {WORKER_ID}\n".encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
    })
    await send({"type": "http.response.body", "body": body})
