/**
 * arbiter: a pre-fork process supervisor. This file is the checklist of
 * start-up; each step throws a typed error, and the one exit path at the
 * bottom turns it into a message and an exit code (SPEC §6).
 *
 * Usage: `arbiter --config app.toml` or `arbiter -w 4 -b 0.0.0.0:8000 -- node server.js`.
 * See `arbiter --help` and README.md.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { parseCli } from "./src/config/cli.ts";
import { helpText } from "./src/config/cli.ts";
import { formatConfig, loadConfig } from "./src/config/load.ts";
import { ArbiterError, ExitCode } from "./src/errors.ts";
import { getLog, type Logging, setupLogging } from "./src/logging/log.ts";
import { PRIVATE_ENV } from "./src/master/generation.ts";
import { runMaster } from "./src/master/master.ts";
import { takeUpgradeState } from "./src/master/upgrade.ts";
import { takeInheritedSockets } from "./src/sockets/inherited.ts";
import { EXEC_MODE_ARG, runExecShim } from "./src/spawn/exec_shim.ts";
import { resolveCommand } from "./src/spawn/resolve.ts";
import { runCtl } from "./src/control/ctl.ts";
import { checkHooks } from "./src/hooks/run.ts";
import { checkReloadPaths, reloadPathsOf } from "./src/reload/watch.ts";
import { selfInvocation } from "./src/spawn/self.ts";

/** The arbiter's version. */
export const VERSION: string = denoJson.version;

let logging: Logging | undefined;

function print(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n"));
}

async function main(argv: string[]): Promise<number> {
  // 1. Socket activation variables and an upgrade hand-over go first, before
  //    anything can see them.
  const upgrade = takeUpgradeState();
  const inherited = takeInheritedSockets();
  // 2. The command line.
  const request = parseCli(argv);
  if (request.kind === "help") return print(helpText()), ExitCode.Ok;
  if (request.kind === "version") return print(`arbiter ${VERSION}`), ExitCode.Ok;
  if (request.kind === "ctl") return await runCtl(request, Deno.env.toObject(), Deno.cwd());
  // 3. The config: file + command line, validated; nothing bound or written yet.
  const env = Deno.env.toObject();
  const inheritedFds = [...inherited.keys()];
  const load = () => loadConfig({ ...request, inheritedFds }, env, Deno.cwd());
  const config = await load();
  const problems = [
    ...checkHooks(config, env),
    ...(config.reload ? checkReloadPaths(reloadPathsOf(config)) : []),
  ];
  if (request.checkConfig) {
    try {
      resolveCommand(config.command[0], { ...env, ...config.env }.PATH, config.chdir ?? Deno.cwd());
    } catch (error) {
      problems.unshift(`command: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ArbiterError(ExitCode.Usage, problems.join("\n"));
  if (request.checkConfig) {
    print(formatConfig(config));
    return ExitCode.Ok;
  }
  // 4. Logging, then the master loop until it stops.
  logging = await setupLogging({
    level: config.log_level,
    format: config.log_format,
    file: config.log_file,
  });
  const masterEnv = Object.fromEntries(
    Object.entries(env).filter(([key]) => !PRIVATE_ENV.includes(key)),
  );
  return await runMaster({
    config,
    reloadConfig: load,
    logging,
    masterEnv,
    self: selfInvocation(),
    inheritedNames: inherited,
    version: VERSION,
    args: argv,
    fullEnv: env,
    upgrade,
  });
}

if (import.meta.main) {
  if (Deno.args[0] === EXEC_MODE_ARG) runExecShim();
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    const known = error instanceof ArbiterError;
    code = known ? error.exitCode : ExitCode.Runtime;
    const message = known ? error.message : `internal error: ${(error as Error)?.stack ?? error}`;
    if (logging) getLog().fatal("{message}", { message });
    else Deno.stderr.writeSync(new TextEncoder().encode(`arbiter: ${message}\n`));
  }
  await logging?.close();
  Deno.exit(code);
}
