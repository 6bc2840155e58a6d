# A Rack app for the puma recipe (docs/recipes.md):
#   puma -C puma.rb (which binds to the sockets arbiter hands over)
worker_id = ENV.fetch("ARBITER_WORKER_ID", "?")
run ->(_env) { [200, { "content-type" => "text/plain; charset=utf-8" }, ["hello from puma worker #{worker_id}\n"]] }
