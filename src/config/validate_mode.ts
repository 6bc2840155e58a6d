/**
 * The config check's child side: the same executable started with
 * {@link VALIDATE_MODE_ARG} (by ./validate_child.ts, through the exec shim)
 * parses the master's command line, loads and validates the config exactly
 * as `loadConfig` does in-process, and answers on stdout with the effective
 * config as JSON. A mistake is the same message as in-process, on stderr,
 * with exit code 2; anything else is exit 1. Short-lived: the master is not
 * in it, so zod and the schema never stay in the running master's memory.
 *
 * @module
 */

import { parseCli } from "./cli.ts";
import { loadConfig } from "./load.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import { VALIDATE_REQUEST_ENV, type ValidateRequest } from "./validate_child.ts";

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let at = 0; at < bytes.length;) at += stream.writeSync(bytes.subarray(at));
}

/** Checks the config the request names and answers; never returns. */
export async function runValidateMode(): Promise<never> {
  let code: number = ExitCode.Ok;
  try {
    const raw = Deno.env.get(VALIDATE_REQUEST_ENV);
    if (raw === undefined) throw new Error(`${VALIDATE_REQUEST_ENV} is not set`);
    Deno.env.delete(VALIDATE_REQUEST_ENV);
    const req = JSON.parse(raw) as ValidateRequest;
    const request = parseCli(req.argv);
    if (request.kind !== "run") throw new Error("the command line does not start a master");
    const config = await loadConfig(
      { ...request, inheritedFds: req.inheritedFds },
      Deno.env.toObject(),
      req.cwd,
    );
    write(Deno.stdout, JSON.stringify(config));
  } catch (error) {
    const known = error instanceof ArbiterError;
    code = known ? error.exitCode : ExitCode.Runtime;
    write(Deno.stderr, known ? error.message : `${(error as Error)?.stack ?? error}`);
  }
  Deno.exit(code);
}
