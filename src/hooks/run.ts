/**
 * Lifecycle hooks (docs/contract.md, "Configuration", "Security"): one run of
 * one hook command, and the `--check-config` test that every configured hook
 * can be executed.
 *
 * Invariants:
 * - A hook is started exactly like a worker: through the exec shim
 *   ({@link spawnWorker}) with no listening socket (`fds: []`), so no fd of
 *   the master reaches it, it is in a process group of its own and it dies
 *   with the master. No shell is involved; argv[0] is resolved the way
 *   execvp(3) would, in the hook's `PATH` and directory.
 * - The hook environment is the one given minus the master's private
 *   variables (`LISTEN_*`, `NOTIFY_SOCKET`, `WATCHDOG_*`) and minus every
 *   inherited `ARBITER_*`, plus the `ARBITER_*` variables of its context.
 * - {@link runHook} never throws and, with a time limit, never waits forever: at `timeoutMs` the
 *   hook's process group gets SIGTERM, and SIGKILL one second later; once
 *   the hook has exited, its output pipes are read for at most one more
 *   second (a background process it left may hold them open).
 * - Every line the hook writes is logged as `hook <name>: <line>`; the
 *   result keeps the last {@link OUTPUT_LIMIT} bytes of both streams.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Config, Hooks } from "../config/types.ts";
import { HOOK_KEYS } from "../config/hook_keys.ts";
import { PRIVATE_ENV } from "../spawn/private_env.ts";
import { resolveCommand } from "../spawn/resolve.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { spawnWorker } from "../spawn/spawner.ts";
import { longTimeout } from "./_timer.ts";
import { LineSplitter } from "../output/lines.ts";
import type { ChildRegistry } from "../spawn/children.ts";
import { signalWorkerGroup, sweepGroup } from "../spawn/process_group.ts";

/** The name of a hook: one of the hook keys of the config. */
export type HookName = keyof Hooks;

/** Every hook name, in the order the hooks fire in a master's life. */
export const HOOK_NAMES: readonly HookName[] = HOOK_KEYS;

/** What a hook is told about the event that fired it; each set field becomes a variable. */
export interface HookContext {
  /** `ARBITER_EVENT`: what happened (usually the hook name). */
  event: string;
  /** `ARBITER_MASTER_PID` */
  masterPid: number;
  /** `ARBITER_WORKER_ID`: the worker's slot, 0…N-1. */
  workerId?: number;
  /** `ARBITER_WORKER_PID` */
  workerPid?: number;
  /** `ARBITER_EXIT_CODE`: a worker's exit code (post_exit), the master's (on_exit). */
  exitCode?: number;
  /** `ARBITER_EXIT_SIGNAL`: the signal that ended a worker, e.g. `SIGKILL`. */
  exitSignal?: string;
  /** `ARBITER_OLD_WORKERS`: the number of workers before a change. */
  oldWorkers?: number;
  /** `ARBITER_NEW_WORKERS`: the number of workers after a change. */
  newWorkers?: number;
  /** `ARBITER_GENERATION`: the generation the event concerns. */
  generation?: number;
}

/** How a hook run ended. */
export interface HookResult {
  /** True only for exit code 0 within the time limit. */
  ok: boolean;
  /** Exit code, or null when it was killed by a signal or never started. */
  code: number | null;
  /** The signal that ended it, e.g. `SIGTERM`, or null. */
  signal: string | null;
  /** True when it was still running at its time limit and was killed. */
  timedOut: boolean;
  /**
   * The last {@link OUTPUT_LIMIT} bytes of its stdout and stderr, interleaved
   * as they arrived; when it could not be started, the reason.
   */
  output: string;
}

/** Options of {@link runHook}. */
export interface RunHookOptions {
  /**
   * Time limit from the start; then SIGTERM, and SIGKILL {@link KILL_GRACE_MS}
   * later. 0 (or Infinity) means no limit.
   */
  timeoutMs: number;
  /** The environment the hook starts from (also that of the exec shim). */
  masterEnv: Record<string, string>;
  /** How to start the exec shim. */
  self: SelfInvocation;
  /** The hook's starting directory, also used to resolve a relative argv[0]; default: cwd. */
  cwd?: string;
  /** Where output lines and the outcome are logged. */
  log: Logger;
  /** Records the hook process as Deno's own, so the PID 1 reaper leaves it alone. */
  registry?: ChildRegistry;
}

/** Bytes of output kept in {@link HookResult.output}. */
export const OUTPUT_LIMIT = 4096;
/** Between SIGTERM and SIGKILL of a hook past its time limit. */
export const KILL_GRACE_MS = 1000;
/** How long the output pipes are still read after the hook exited. */
const DRAIN_GRACE_MS = 1000;
/** A line longer than this many bytes is logged in pieces. */
const MAX_LINE = 4096;

/** The `ARBITER_*` variables of a context, only those set. */
export function hookEnv(context: HookContext): Record<string, string> {
  const vars: [string, string | number | undefined][] = [
    ["ARBITER_EVENT", context.event],
    ["ARBITER_MASTER_PID", context.masterPid],
    ["ARBITER_WORKER_ID", context.workerId],
    ["ARBITER_WORKER_PID", context.workerPid],
    ["ARBITER_EXIT_CODE", context.exitCode],
    ["ARBITER_EXIT_SIGNAL", context.exitSignal],
    ["ARBITER_OLD_WORKERS", context.oldWorkers],
    ["ARBITER_NEW_WORKERS", context.newWorkers],
    ["ARBITER_GENERATION", context.generation],
  ];
  const env: Record<string, string> = {};
  for (const [key, value] of vars) if (value !== undefined) env[key] = String(value);
  return env;
}

function describeEnd(result: HookResult): string {
  if (result.signal !== null) return `killed by ${result.signal}`;
  return `exit code ${result.code}`;
}

/**
 * Runs one hook to its end and reports how it went.
 *
 * @param name the hook key, used in log lines
 * @param argv the hook command; argv[0] is resolved in the hook's `PATH`
 * @param context the event, passed as `ARBITER_*` variables
 * @returns the outcome; a hook that fails, hangs or cannot start gives
 *   `ok: false` — this function does not throw for it
 *
 * @example Run a hook
 * ```ts ignore
 * import { getLog } from "../logging/log.ts";
 * import { selfInvocation } from "../spawn/self.ts";
 * import { runHook } from "./run.ts";
 * const result = await runHook("on_reload", ["./notify-deploy"], {
 *   event: "on_reload",
 *   masterPid: Deno.pid,
 * }, { timeoutMs: 30_000, masterEnv: Deno.env.toObject(), self: selfInvocation(), log: getLog() });
 * if (!result.ok) console.log(result.output);
 * ```
 */
export async function runHook(
  name: HookName,
  argv: string[],
  context: HookContext,
  opts: RunHookOptions,
): Promise<HookResult> {
  const { log } = opts;
  const cwd = opts.cwd ?? Deno.cwd();
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(opts.masterEnv)) {
    if (!PRIVATE_ENV.includes(key) && !key.startsWith("ARBITER_")) env[key] = value;
  }
  Object.assign(env, hookEnv(context));

  const notStarted = (reason: string): HookResult => {
    log.error("hook {hook}: {error}", { event: "hook.failed", hook: name, error: reason });
    return { ok: false, code: null, signal: null, timedOut: false, output: reason };
  };
  if (argv.length === 0) return notStarted("empty command");
  let program: string;
  try {
    program = resolveCommand(argv[0], env.PATH, cwd);
  } catch (error) {
    return notStarted(error instanceof Error ? error.message : String(error));
  }
  let child: Deno.ChildProcess;
  try {
    child = spawnWorker(opts.self, {
      spec: { program, argv, env, fds: [], masterPid: Deno.pid },
      cwd,
      shimEnv: opts.masterEnv,
      output: "piped",
      stdin: "null",
    });
    opts.registry?.track(child);
  } catch (error) {
    return notStarted(`cannot start ${JSON.stringify(argv[0])}: ${error}`);
  }
  const started = performance.now();
  log.debug("hook {hook} started (pid {hook_pid}): {argv}", {
    event: "hook.started",
    hook: name,
    hook_pid: child.pid,
    argv,
  });

  const output = new ByteTail(OUTPUT_LIMIT);
  const readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.getReader();
    readers.push(reader);
    const decoder = new TextDecoder();
    const lines = new LineSplitter({
      maxBytes: MAX_LINE,
      trimCr: true,
      onLine: (bytes) =>
        log.info("hook {hook}: {line}", {
          event: "hook.output",
          hook: name,
          line: decoder.decode(bytes),
        }),
    });
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        output.push(value);
        lines.push(value);
      }
    } catch {
      // Cancelled after the drain grace: what was read is kept.
    } finally {
      lines.end();
    }
  };
  const reading = Promise.all([pump(child.stdout), pump(child.stderr)]);

  let timedOut = false;
  let exited = false;
  // The shim puts itself in a process group named by its pid; signalling the
  // group also reaches what the hook started — checked to be ours first, as
  // for a worker (process_group.ts). Until the group exists (or once it is
  // empty), fall back to the process itself while it is unreaped.
  const signalGroup = (signal: Deno.Signal) => {
    if (exited) {
      sweepGroup(child.pid, signal, new Set());
      return;
    }
    if (signalWorkerGroup(child.pid, signal)) return;
    try {
      child.kill(signal);
    } catch { /* exited in between */ }
  };
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const limited = Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0;
  // Chained: a hook_timeout past ~24.8 days must not overflow into 1 ms.
  const cancelLimit = !limited ? undefined : longTimeout(() => {
    timedOut = true;
    log.warning(
      "hook {hook} still running after {seconds} s (pid {hook_pid}): SIGTERM, SIGKILL in {grace} s",
      {
        event: "hook.overrun",
        hook: name,
        seconds: opts.timeoutMs / 1000,
        hook_pid: child.pid,
        grace: KILL_GRACE_MS / 1000,
      },
    );
    signalGroup("SIGTERM");
    killTimer = setTimeout(() => {
      killTimer = undefined;
      signalGroup("SIGKILL");
    }, KILL_GRACE_MS);
  }, opts.timeoutMs);

  const status = await child.status;
  exited = true;
  cancelLimit?.();
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const drained = await Promise.race([
    reading.then(() => true),
    new Promise<boolean>((resolve) =>
      drainTimer = setTimeout(() => resolve(false), DRAIN_GRACE_MS)
    ),
  ]);
  clearTimeout(drainTimer);
  if (killTimer !== undefined) {
    // Past its limit: whatever is left of its group goes now.
    clearTimeout(killTimer);
    signalGroup("SIGKILL");
  }
  if (!drained) {
    log.debug("hook {hook}: output still open after it exited; no longer read", {
      event: "hook.done",
      hook: name,
    });
    await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
    await reading;
  }

  const result: HookResult = {
    ok: status.success && !timedOut,
    code: status.signal === null ? status.code : null,
    signal: status.signal,
    timedOut,
    output: output.text(),
  };
  const ms = Math.round(performance.now() - started);
  if (result.ok) {
    log.debug("hook {hook} done in {ms} ms", { event: "hook.done", hook: name, ms });
  } else if (timedOut) {
    log.error("hook {hook} failed: timed out after {seconds} s ({end})", {
      event: "hook.failed",
      hook: name,
      seconds: opts.timeoutMs / 1000,
      end: describeEnd(result),
    });
  } else {
    log.error("hook {hook} failed: {end} after {ms} ms", {
      event: "hook.failed",
      hook: name,
      end: describeEnd(result),
      ms,
    });
  }
  return result;
}

/**
 * Problems with the configured hooks, for `--check-config`: each hook's
 * program must exist and be executable in the hook's `PATH` (the master's
 * environment with the config's `env` on top) and directory (`chdir`).
 *
 * @param masterEnv the environment the master runs with (default: this process's)
 * @param cwd the master's directory (default: this process's)
 * @returns one message per problem, naming the key; empty when all is well
 *
 * @example
 * ```ts ignore
 * checkHooks(config); // ['on_reload: cannot execute "x": not found in PATH']
 * ```
 */
export function checkHooks(
  config: Config,
  masterEnv: Record<string, string> = Deno.env.toObject(),
  cwd: string = Deno.cwd(),
): string[] {
  const problems: string[] = [];
  const path = { ...masterEnv, ...config.env }.PATH;
  for (const name of HOOK_NAMES) {
    const argv = config[name];
    if (argv === undefined) continue;
    if (argv.length === 0) {
      problems.push(`${name}: empty command`);
      continue;
    }
    try {
      resolveCommand(argv[0], path, config.chdir ?? cwd);
    } catch (error) {
      problems.push(`${name}: ${error instanceof Error ? error.message : error}`);
    }
  }
  return problems;
}

/**
 * The last `limit` bytes of a hook's output, decoded at the end (unlike a
 * worker's line tail in output/tail.ts, a hook's output is kept by bytes).
 */
class ByteTail {
  #chunks: Uint8Array[] = [];
  #size = 0;

  constructor(readonly limit: number) {}

  push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#size += bytes.length;
    while (this.#chunks.length > 1 && this.#size - this.#chunks[0].length >= this.limit) {
      this.#size -= this.#chunks.shift()!.length;
    }
  }

  text(): string {
    const all = new Uint8Array(this.#size);
    let off = 0;
    for (const c of this.#chunks) {
      all.set(c, off);
      off += c.length;
    }
    let start = Math.max(0, all.length - this.limit);
    // Do not start inside a UTF-8 sequence.
    while (start < all.length && start > 0 && (all[start] & 0xc0) === 0x80) start++;
    return new TextDecoder().decode(all.subarray(start));
  }
}
