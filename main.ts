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
 * The config check a master runs in a child (src/config/validate_child.ts)
 * is decided here too, before the signal fence: it is short-lived.
 *
 * Every other mode first makes sure SIGUSR1 cannot open Deno's inspector and
 * that a signal during start-up cannot end it silently (src/master/usr1.ts):
 * that re-executes the program in place, so it comes before the rest of the
 * program is loaded (cheaper) and before anything consumes the environment.
 *
 * @module
 */

import { EXEC_MODE_ARG, runExecShim } from "./src/spawn/exec_shim.ts";
import { VALIDATE_MODE_ARG } from "./src/config/validate_child.ts";

if (import.meta.main) {
  if (Deno.args[0] === EXEC_MODE_ARG) runExecShim();
  if (Deno.args[0] === VALIDATE_MODE_ARG) {
    const { runValidateMode } = await import("./src/config/validate_mode.ts");
    await runValidateMode();
  }
  const { fenceSignals } = await import("./src/master/usr1.ts");
  const warning = fenceSignals();
  if (warning) console.error(`arbiter: warning: ${warning}`);
  const { runCli } = await import("./src/cli/main.ts");
  Deno.exit(await runCli(Deno.args));
}
