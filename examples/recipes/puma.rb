# Puma's config for the puma recipe (docs/recipes.md): `puma -C puma.rb`.
# The sockets arbiter hands over (LISTEN_FDS), and nothing else.
bind_to_activated_sockets "only"
# Off, so that a reload fails no request: with it on, a stopping puma closes
# every connection whose request has not fully arrived yet (a fresh client's,
# about to send). Off, a thread reads each request itself.
queue_requests false
