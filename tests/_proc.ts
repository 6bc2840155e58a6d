/**
 * Where arbiter is and how to run it, and the processes of a test read from
 * /proc (the parsing is the one `arbiter verify` uses): alive, zombie,
 * parent, group, argv, children. Part of the integration-test harness
 * (re-exported by tests/_harness.ts).
 *
 * @module
 */

import { allStats, descendantsOf, parseStat, type ProcStat, readStat } from "../src/verify/proc.ts";

/** Absolute path of the repository root (no trailing slash). */
export const REPO_ROOT: string = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** Absolute path of `tests/workers`. */
export const WORKERS_DIR: string = `${REPO_ROOT}/tests/workers`;
/** Absolute path of the master's entry point. */
export const MAIN_TS: string = `${REPO_ROOT}/main.ts`;

/**
 * The variable naming a compiled `arbiter` to test instead of the checkout:
 * `ARBITER_BIN=./arbiter deno task test` runs every test that starts the
 * master through this harness against that executable.
 */
export const ARBITER_BIN_ENV = "ARBITER_BIN";

/**
 * The argv that runs arbiter: `$ARBITER_BIN` (resolved against the current
 * directory) when set, else `deno run -A --quiet main.ts`. Read at each call.
 */
export function arbiterArgv(): string[] {
  const bin = Deno.env.get(ARBITER_BIN_ENV);
  if (bin) return [bin.startsWith("/") ? bin : `${Deno.cwd()}/${bin.replace(/^\.\//, "")}`];
  return [Deno.execPath(), "run", "-A", "--quiet", MAIN_TS];
}

/**
 * A `Deno.Command` running `arbiter ARGS` (see {@link arbiterArgv}), for
 * one-shot uses such as `ctl` and `--check-config`.
 */
export function arbiterCommand(args: string[], options: Deno.CommandOptions = {}): Deno.Command {
  const [program, ...lead] = arbiterArgv();
  return new Deno.Command(program, { ...options, args: [...lead, ...args] });
}

/** What a one-shot `arbiter ctl` printed, and its exit code. */
export interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `arbiter ctl ARGS` to its end, with no stdin. */
export async function runCtl(args: string[]): Promise<CtlResult> {
  const out = await arbiterCommand(["ctl", ...args], { stdin: "null" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

export { descendantsOf, parseStat, type ProcStat, readStat };

/** True while `/proc/<pid>` exists — zombies included (see {@link isAlive}). */
export function processExists(pid: number): boolean {
  return readStat(pid) !== undefined;
}

/** True if the process has exited but has not been reaped yet. */
export function isZombie(pid: number): boolean {
  return readStat(pid)?.state === "Z";
}

/** True if the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = readStat(pid);
  return st !== undefined && st.state !== "Z";
}

/** Parent pid, or undefined when the process is gone. */
export function parentOf(pid: number): number | undefined {
  return readStat(pid)?.ppid;
}

/** Process group id, or undefined when the process is gone. */
export function pgidOf(pid: number): number | undefined {
  return readStat(pid)?.pgid;
}

/** The argv of a process (`/proc/<pid>/cmdline`); [] when gone or a zombie. */
export function cmdlineOf(pid: number): string[] {
  try {
    const raw = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    const parts = raw.split("\0");
    if (parts.at(-1) === "") parts.pop();
    return parts;
  } catch {
    return [];
  }
}

/** Pids whose parent is `pid` (zombies included). */
export function childrenOf(pid: number): number[] {
  return allStats().filter((s) => s.ppid === pid).map((s) => s.pid).sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------
// Waiting

/** Default worker test: a live child whose argv names neither `main.ts` nor `$ARBITER_BIN`. */
export function isWorkerProgram(pid: number): boolean {
  const st = readStat(pid);
  if (!st || st.state === "Z") return false;
  const argv = cmdlineOf(pid);
  const [bin] = Deno.env.get(ARBITER_BIN_ENV) ? arbiterArgv() : [];
  return argv.length > 0 && argv[0] !== bin &&
    !argv.some((a) => a === MAIN_TS || a.endsWith("/main.ts"));
}
