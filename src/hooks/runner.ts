/**
 * Runs the configured hooks for the master without ever blocking its loop:
 * {@link HookRunner.fire} starts (or queues) a hook and returns a promise of
 * its result at once.
 *
 * Invariants:
 * - Hooks of the same name run one after another, in the order they were
 *   fired; hooks of different names may run at the same time.
 * - What runs is decided when the hook is fired: the argv, `hook_timeout`,
 *   `env` and `chdir` of the config current at that moment (or the one given
 *   to `fire`), so a config swapped by {@link HookRunner.update} affects only
 *   later firings.
 * - At most {@link HookRunnerOptions.maxQueued} firings of one name wait
 *   behind a running one; more are skipped with a warning (a crash-looping
 *   worker must not pile up post_exit hooks without bound).
 * - The promises returned never reject.
 *
 * @module
 */

import type { ChildRegistry } from "../spawn/children.ts";
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/types.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { type HookContext, type HookName, type HookResult, runHook } from "./run.ts";

/** The context of a firing; `event` defaults to the hook name, `masterPid` to this process. */
export type FireContext = Omit<HookContext, "event" | "masterPid"> & {
  event?: string;
  masterPid?: number;
};

/** Options of a {@link HookRunner}. */
export interface HookRunnerOptions {
  /** The running config: which hooks exist, `hook_timeout`, `env`, `chdir`. */
  config: Config;
  /** The master's environment without its private variables; the config's `env` goes on top. */
  masterEnv: Record<string, string>;
  self: SelfInvocation;
  log: Logger;
  /** Passed to every hook run (see {@link RunHookOptions.registry}). */
  registry?: ChildRegistry;
  /** Firings of one name allowed to wait behind a running one (default 64). */
  maxQueued?: number;
}

/** Options of one {@link HookRunner.fire}. */
export interface FireOptions {
  /**
   * Take the hook, its timeout and environment from this config instead of
   * the current one — for on_reload, which belongs to the config being
   * loaded, before it is adopted.
   */
  config?: Config;
}

interface Lane {
  /** Resolves when the last firing of this name has finished. */
  tail: Promise<unknown>;
  /** Firings started or waiting, not finished. */
  pending: number;
}

/**
 * Fires hooks by name; see the module documentation for the guarantees.
 *
 * @example
 * ```ts ignore
 * const hooks = new HookRunner({ config, masterEnv, self: selfInvocation(), log: getLog() });
 * hooks.fire("post_exit", { workerId: 0, workerPid: 1234, exitCode: 1 });
 * hooks.fire("on_exit", { exitCode: 0 });
 * await hooks.idle();
 * ```
 */
export class HookRunner {
  #config: Config;
  readonly #masterEnv: Record<string, string>;
  readonly #self: SelfInvocation;
  readonly #log: Logger;
  readonly #registry?: ChildRegistry;
  readonly #maxQueued: number;
  readonly #lanes = new Map<HookName, Lane>();
  readonly #running = new Set<Promise<unknown>>();

  constructor(opts: HookRunnerOptions) {
    const maxQueued = opts.maxQueued ?? 64;
    if (!Number.isInteger(maxQueued) || maxQueued < 0) {
      throw new RangeError(`maxQueued: expected an integer ≥ 0, got ${maxQueued}`);
    }
    this.#config = opts.config;
    this.#masterEnv = opts.masterEnv;
    this.#self = opts.self;
    this.#log = opts.log;
    this.#registry = opts.registry;
    this.#maxQueued = maxQueued;
  }

  /** The config hooks are taken from from now on (after a successful reload). */
  update(config: Config): void {
    this.#config = config;
  }

  /** Whether `name` is configured (in `config`, or the current config). */
  has(name: HookName, config: Config = this.#config): boolean {
    return config[name] !== undefined;
  }

  /**
   * Runs hook `name` after the firings of the same name before it.
   * @returns its result, or undefined (and nothing runs) when it is not configured
   */
  fire(
    name: HookName,
    context: FireContext = {},
    opts: FireOptions = {},
  ): Promise<HookResult> | undefined {
    const config = opts.config ?? this.#config;
    const argv = config[name];
    if (argv === undefined) return undefined;
    const full: HookContext = {
      ...context,
      event: context.event ?? name,
      masterPid: context.masterPid ?? Deno.pid,
    };
    const lane = this.#lanes.get(name) ?? { tail: Promise.resolve(), pending: 0 };
    if (lane.pending > this.#maxQueued) {
      const output = `skipped: ${lane.pending} ${name} hooks are already running or waiting`;
      this.#log.warning("hook {hook} {output}", { event: "hook.skipped", hook: name, output });
      return Promise.resolve({ ok: false, code: null, signal: null, timedOut: false, output });
    }
    const run = () =>
      runHook(name, [...argv], full, {
        timeoutMs: config.hook_timeout * 1000,
        masterEnv: { ...this.#masterEnv, ...config.env },
        self: this.#self,
        cwd: config.chdir,
        log: this.#log,
        registry: this.#registry,
      }).catch((error): HookResult => {
        // runHook does not throw; this is a last guard so the lane never breaks.
        const output = `internal error: ${error}`;
        this.#log.error("hook {hook}: {output}", { event: "hook.failed", hook: name, output });
        return { ok: false, code: null, signal: null, timedOut: false, output };
      });
    const result = lane.tail.then(run);
    lane.tail = result;
    lane.pending++;
    this.#lanes.set(name, lane);
    this.#running.add(result);
    result.then(() => {
      this.#running.delete(result);
      if (--lane.pending === 0 && this.#lanes.get(name) === lane) this.#lanes.delete(name);
    });
    return result;
  }

  /** Number of firings running or waiting. */
  get pending(): number {
    return this.#running.size;
  }

  /** Resolves once no hook is running or waiting (including ones fired meanwhile). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }
}
