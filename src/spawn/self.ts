/**
 * How this program starts another copy of itself — for the exec shim and
 * for the in-place upgrade. A compiled binary is its own executable; under
 * `deno run`, the `deno` executable must be given the module, the config and
 * the flags the program needs again.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** The program and leading arguments that start this program again. */
export interface SelfInvocation {
  executable: string;
  args: string[];
  /** True when running from a `deno compile`d binary. */
  compiled: boolean;
}

/** Flags `deno run` needs to run the arbiter (the compile task bakes in the same). */
export const RUN_FLAGS = ["--allow-all", "--unstable-net", "--quiet", "--no-prompt"];

/**
 * Works out how to re-invoke this program, from the executable path and the
 * main module's URL (both injectable for tests of either form).
 */
export function selfInvocation(
  executable: string = Deno.execPath(),
  mainModule: string = Deno.mainModule,
): SelfInvocation {
  // deno compile serves the embedded modules from a virtual directory
  // named deno-compile-<name>; a module run by `deno run` never is.
  const compiled = mainModule.includes("/deno-compile-");
  if (compiled) return { executable, args: [], compiled };
  const args = [...RUN_FLAGS];
  if (mainModule.startsWith("file:")) {
    const config = new URL("./deno.json", mainModule);
    try {
      Deno.statSync(config);
      args.push("--config", fileURLToPath(config));
    } catch { /* a module outside this repo: let deno find its own config */ }
  }
  args.push(mainModule);
  return { executable, args, compiled };
}
