/**
 * The start-up checklist of the master (and of `arbiter ctl`): each step
 * throws a typed error, and {@link runCli} is the one exit path that turns it
 * into a message and an exit code (docs/contract.md, "Files and exit codes").
 * Loaded by `main.ts` only when the process is not the exec shim, so a shim
 * never pays for this module graph.
 *
 * @module
 */

import { parseCli } from "../config/cli.ts";
import { helpText } from "../config/cli.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import { getLog, type Logging, setupLogging } from "../logging/log.ts";
import { PRIVATE_ENV } from "../master/generation.ts";
import { containUncaughtErrors } from "../master/last_resort.ts";
import { runMaster } from "../master/master.ts";
import { takeUpgradeState } from "../master/upgrade.ts";
import { takeInheritedSockets } from "../sockets/inherited.ts";
import { preflight } from "./preflight.ts";
import { selfInvocation } from "../spawn/self.ts";
import { blockAllSignals, setProcessName } from "../sys/process.ts";
import { VERSION, versionText } from "../version.ts";
import { validateInChild } from "../config/validate_child.ts";

/** The arbiter's version (src/version.ts). */
export { VERSION };

let logging: Logging | undefined;

function print(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"));
}

async function main(argv: string[]): Promise<number> {
  // 1. Socket activation variables and an upgrade hand-over go first, before
  //    anything can see them.
  const ignoredState: string[] = []; // logged once logging is up (trust)
  const upgrade = takeUpgradeState(Deno.env, (why) => ignoredState.push(why));
  const inherited = takeInheritedSockets();
  // 2. The command line.
  const request = parseCli(argv);
  // Only a running master keeps the start-up signals pending until it listens
  // (src/master/usr1.ts, fenceStartSignals); every other mode takes them as usual.
  if (request.kind !== "run" || request.checkConfig) blockAllSignals(false);
  if (request.kind === "help") return print(helpText()), ExitCode.Ok;
  if (request.kind === "version") return print(versionText()), ExitCode.Ok;
  // The client and verify are loaded only when asked for: the running master
  // never needs them, and every module it loads stays in its memory.
  if (request.kind === "ctl") {
    const { runCtl } = await import("../control/ctl.ts");
    return await runCtl(request, Deno.env.toObject(), Deno.cwd());
  }
  if (request.kind === "verify") {
    const { runVerify } = await import("../verify/run.ts");
    return await runVerify(request, Deno.env.toObject(), Deno.cwd());
  }
  // 3. The config: file + command line, validated; nothing bound or written yet.
  //    A running master validates in a child process (at start and on each
  //    reload), so zod and the schema never stay in its memory; the check
  //    alone validates in-process.
  const env = Deno.env.toObject();
  const inheritedFds = [...inherited.keys()];
  const self = selfInvocation();
  const checkRequest = { argv, cwd: Deno.cwd(), inheritedFds };
  const load = (track?: (child: Deno.ChildProcess) => void) =>
    validateInChild(checkRequest, { self, env, track });
  const loadHere = async () => {
    const { loadConfig } = await import("../config/load.ts");
    return await loadConfig({ ...request, inheritedFds }, env, checkRequest.cwd);
  };
  const config = request.checkConfig ? await loadHere() : await load();
  // 4. Everything that can be found wrong before binding, the same checks for both.
  const runtimeDir = await preflight(config, { checkOnly: request.checkConfig, env });
  if (request.checkConfig) {
    const { formatConfig } = await import("../config/load.ts");
    print(formatConfig(config));
    print(`# runtime directory: ${runtimeDir.path} (from ${runtimeDir.from})`);
    return ExitCode.Ok;
  }
  // 5. The master's name in `ps -e` and /proc/PID/comm (docs/operations.md, "Process
  //    name"), logging, then the master loop until it stops.
  nameMaster();
  logging = await setupLogging({
    level: config.log_level,
    format: config.log_format,
    file: config.log_file,
  });
  for (const warning of ignoredState) {
    getLog().warn("{warning}", { event: "master.warning", warning });
  }
  const masterEnv = Object.fromEntries(
    Object.entries(env).filter(([key]) => !PRIVATE_ENV.includes(key)),
  );
  // From here on an error nobody caught is logged, not the end of every worker.
  const releaseContainment = containUncaughtErrors(getLog());
  return await runMaster({
    config,
    reloadConfig: load,
    logging,
    masterEnv,
    self,
    inheritedNames: inherited,
    version: VERSION,
    args: argv,
    fullEnv: env,
    upgrade,
    runtimeDir: runtimeDir.path,
  }).finally(releaseContainment);
}

/** The master's process name; kept as it is where the runtime cannot change it (no FFI). */
function nameMaster(): void {
  try {
    setProcessName("arbiter");
  } catch {
    // Not Linux, or FFI not allowed: `ps` shows the runtime's name, and nothing else changes.
  }
}

/** Runs the program for `argv`; resolves with the exit code (never calls Deno.exit). */
export async function runCli(argv: string[]): Promise<number> {
  let code: number;
  try {
    code = await main(argv);
  } catch (error) {
    const known = error instanceof ArbiterError;
    code = known ? error.exitCode : ExitCode.Runtime;
    const message = known ? error.message : `internal error: ${(error as Error)?.stack ?? error}`;
    if (logging) getLog().fatal("{message}", { event: "master.fatal", message });
    else Deno.stderr.writeSync(new TextEncoder().encode(`arbiter: ${message}\n`));
  }
  await logging?.close();
  return code;
}
