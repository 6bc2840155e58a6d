# Puma in cluster mode for the preforking recipe (docs/recipes.md):
# `puma -C puma_cluster.rb`, one of these per arbiter worker.
# The sockets arbiter hands over (LISTEN_FDS), and nothing else.
bind_to_activated_sockets "only"
# Off, so that a reload fails no request (see puma.rb).
queue_requests false
# Forks per arbiter worker; each shares the preloaded app copy-on-write.
workers Integer(ENV.fetch("PUMA_WORKERS", "2"))
# Load the app once in puma's master, before forking: one boot per reload.
preload_app!
