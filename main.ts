/**
 * arbiter: a pre-fork process supervisor.
 *
 * Usage: `arbiter --config app.toml` or `arbiter -w 4 -b 0.0.0.0:8000 -- node server.js`.
 * See `arbiter --help` and README.md.
 *
 * The same executable is also the exec shim between the master and each
 * worker (src/spawn/exec_shim.ts). That path must start fast, so it is decided
 * here before the rest of the program is loaded: the shim imports only libc
 * bindings, and everything else comes through one dynamic import (a literal
 * specifier, which `deno compile` embeds like a static one).
 *
 * @module
 */

import { EXEC_MODE_ARG, runExecShim } from "./src/spawn/exec_shim.ts";

if (import.meta.main) {
  if (Deno.args[0] === EXEC_MODE_ARG) runExecShim();
  const { runCli } = await import("./src/cli/main.ts");
  Deno.exit(await runCli(Deno.args));
}
