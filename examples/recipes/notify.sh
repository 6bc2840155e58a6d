#!/bin/sh
# A shell worker for the systemd-notify recipe (docs/recipes.md): set up, say
# READY=1, then exec the server (here the Express app: Node cannot send the
# datagram itself). The socket at fd 3 is already listening, so connections
# that arrive before the server accepts wait in its queue.
set -eu
# ... migrations, cache warm-up: anything that must finish before serving ...
systemd-notify --ready --status="serving"
exec node express.js
