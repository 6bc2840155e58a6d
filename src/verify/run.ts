/**
 * `arbiter verify`: tells a user whether their worker is ready for arbiter,
 * before production does. The checklist:
 *
 * 1. Load the user's config exactly as the master would (a mistake is exit 2).
 * 2. Plan a private run: the same worker on free loopback ports, in a
 *    temporary directory, touching none of the user's addresses or files.
 * 3. Become the child subreaper (so leftovers can be found), start the real
 *    master as a child process of this executable, and run the checks in
 *    order, each reporting as it finishes (progress on stderr).
 * 4. Stop the master (TERM is itself a check), check that nothing is left,
 *    print the table (or JSON) on stdout, and exit 0 (all pass or n/a) or 1.
 *
 * Invariants: the private master is stopped and everything under it killed
 * before this returns, whatever happened; the temporary directory is removed.
 *
 * @module
 */

import { loadConfig } from "../config/load.ts";
import type { VerifyRequest } from "../config/_verify_options.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import { workerProgram } from "../master/generation.ts";
import { selfInvocation } from "../spawn/self.ts";
import { setChildSubreaper } from "../sys/process.ts";
import { checkBoot } from "./boot_checks.ts";
import type { CheckOutcome, RunContext } from "./context.ts";
import { checkLeftovers } from "./leftovers.ts";
import { planRun, portsNeeded } from "./plan.ts";
import { PrivateMaster } from "./private_master.ts";
import { checkReloads } from "./reload_checks.ts";
import {
  type CheckId,
  type CheckResult,
  CHECKS,
  exitCodeOf,
  progressLine,
  reportJson,
  reportTable,
  type VerifyReport,
} from "./report.ts";
import { checkUsr1, checkWatchdog } from "./signal_checks.ts";
import { checkTerm } from "./term_checks.ts";

/** The checks after boot, in the order they run, with the rows each produces. */
const STEPS: { ids: CheckId[]; run: (ctx: RunContext) => Promise<CheckOutcome> }[] = [
  { ids: ["usr1"], run: checkUsr1 },
  { ids: ["hup-close"], run: async (ctx) => [await checkReloads(ctx, false)] },
  { ids: ["hup-keepalive"], run: async (ctx) => [await checkReloads(ctx, true)] },
  // After the reloads, so a watchdog abort under load is seen too.
  { ids: ["watchdog"], run: checkWatchdog },
  { ids: ["term-inflight", "term-open", "term-exit"], run: checkTerm },
];

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
}

const progress = (text: string) => write(Deno.stderr, `arbiter verify: ${text}\n`);

/** Free ports on 127.0.0.1, all held at once while they are picked so they differ. */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/**
 * Runs `arbiter verify` and returns its exit code.
 *
 * @throws {ArbiterError} exit 2 for a config or usage mistake, before anything starts.
 */
export async function runVerify(
  req: VerifyRequest,
  env: Record<string, string>,
  cwd: string,
): Promise<number> {
  const config = await loadConfig(
    { configPath: req.configPath, command: req.command, overrides: {} },
    env,
    cwd,
  );
  try {
    workerProgram(config, env);
  } catch (error) {
    throw new ArbiterError(ExitCode.Usage, `command: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const dir = await Deno.makeTempDir({ prefix: "arbiter-verify-" });
  try {
    const plan = planRun(config, { tcpPorts: freePorts(portsNeeded(config)), dir }, cwd);
    const file = `${dir}/verify.toml`;
    await Deno.writeTextFile(file, plan.toml);
    const address = plan.binds[0].replace(/^unix:/, "");
    progress(
      `${config.command.join(" ")}: ${plan.workers} worker(s), ready = "${plan.ready}", ` +
        `on ${address}`,
    );
    for (const note of plan.notes) progress(`note: ${note}`);
    setChildSubreaper();
    const started = performance.now();
    const master = PrivateMaster.start(selfInvocation(), ["--config", file], cwd);
    const ctx: RunContext = {
      master,
      plan,
      options: { path: req.path, reloads: req.reloads },
      progress: (text) => progress(text),
    };
    const results: CheckResult[] = [];
    const record = (rows: CheckResult[]) => {
      for (const row of rows) {
        results.push(row);
        write(Deno.stderr, progressLine(row) + "\n");
      }
    };
    // Interrupted (Ctrl-C, or a TERM to verify): end the private run at once;
    // the checks then see the master gone and the report still prints.
    const interrupt = () => {
      progress("interrupted: killing the private master");
      master.signal("SIGKILL");
    };
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    for (const sig of signals) Deno.addSignalListener(sig, interrupt);
    try {
      try {
        await runChecks(ctx, record);
      } finally {
        await stopMaster(ctx);
      }
      record([await checkLeftovers(ctx)]);
    } finally {
      await master.kill(); // a no-op unless something above failed half way
      for (const sig of signals) Deno.removeSignalListener(sig, interrupt);
    }
    const order = Object.keys(CHECKS);
    results.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
    const report: VerifyReport = {
      command: config.command,
      workers: plan.workers,
      address,
      duration_s: Math.round(performance.now() - started) / 1000,
      notes: plan.notes,
      checks: results,
    };
    write(Deno.stdout, req.json ? reportJson(report) : reportTable(report));
    return exitCodeOf(report);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function runChecks(ctx: RunContext, record: (rows: CheckResult[]) => void): Promise<void> {
  const boot = await checkBoot(ctx);
  record(boot.results);
  let skip = boot.blocked ? `not run: ${boot.blocked}` : undefined;
  for (const step of STEPS) {
    if (skip) {
      record(step.ids.map((id) => ({ id, status: "n/a", evidence: skip! })));
      continue;
    }
    if (ctx.master.exited) {
      const { code, signal } = await ctx.master.status;
      const how = signal ? `was killed by ${signal}` : `exited (code ${code})`;
      record([{
        id: step.ids[0],
        status: "fail",
        evidence: `the private master ${how} before this check: ${lastProblem(ctx)}`,
      }]);
      skip = "not run: the private master exited";
      record(step.ids.slice(1).map((id) => ({ id, status: "n/a", evidence: skip! })));
      continue;
    }
    try {
      record(await step.run(ctx));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      record(step.ids.map((id) => ({
        id,
        status: "fail",
        evidence: `verify could not finish this check: ${message}`,
      })));
    }
  }
}

function lastProblem(ctx: RunContext): string {
  const e = ctx.master.events.findLast((e) =>
    e.type === "problem" || e.type === "halting" || e.type === "text"
  );
  if (e?.type === "problem") return e.message;
  if (e?.type === "halting") return e.reason;
  if (e?.type === "text") return e.line;
  return "no reason logged";
}

/**
 * Stops the master if the checks left it running: TERM, then SIGKILL. Its
 * workers are left to the leftovers check, which reports and kills them.
 */
async function stopMaster(ctx: RunContext): Promise<void> {
  const { master, plan } = ctx;
  if (master.exited) return;
  master.signal("SIGTERM");
  if (await master.waitExit(plan.gracefulTimeoutS * 1000 + 5000)) return;
  master.signal("SIGKILL");
  await master.status;
}
