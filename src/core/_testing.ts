/**
 * Helpers for the core's unit tests: settings, and {@link Sim}, which drives
 * a {@link MasterCore} as the executor would — spawns get pids at once, time
 * moves only on demand and every deadline on the way fires — with no
 * process and no real clock.
 *
 * @module
 */

import { type CoreOptions, MasterCore } from "./core.ts";
import type { Effect, Event, Settings } from "./events.ts";

/** The spawn context in tests: a name to tell generations apart. */
export type Ctx = { name: string };

export function settings(over: Partial<Settings> = {}): Settings {
  return {
    workers: 2,
    gracefulTimeoutMs: 30_000,
    bootTimeoutMs: 30_000,
    ready: "spawn",
    watchdogMs: 0,
    maxLifetimeMs: 0,
    maxLifetimeJitterMs: 0,
    commandName: "app",
    ...over,
  };
}

/** Drives a core like the executor would: spawns get pids, time moves on demand. */
export class Sim {
  core: MasterCore<Ctx>;
  now = 0;
  nextPid = 100;
  effects: Effect<Ctx>[] = [];
  pids = new Map<number, number>(); // serial -> pid
  serialOf = new Map<number, number>(); // pid -> serial
  /** What the executor would answer to `sample-drain`: connections waiting (0: empty). */
  queued = 0;
  /** Processes a gone worker's group holds, by pgid, as `sweep-group` would find them. */
  groups = new Map<number, number>();
  /** When false, `sample-drain` and `sweep-group` wait for the test to answer them. */
  autoAnswer = true;

  constructor(s: Settings = settings(), ctx: Ctx = { name: "gen1" }, options: CoreOptions = {}) {
    this.core = new MasterCore(s, ctx, { random: () => 0.5, ...options });
    this.#absorb(this.core.start(this.now));
  }

  #absorb(effects: Effect<Ctx>[]): void {
    this.effects.push(...effects);
    for (const e of effects) {
      if (e.type === "log") checkLogTemplate(e.message, e.props ?? {});
      if (e.type === "spawn") {
        const pid = this.nextPid++;
        this.pids.set(e.serial, pid);
        this.serialOf.set(pid, e.serial);
        this.#absorb(this.core.handle({ type: "spawned", serial: e.serial, pid }, this.now));
      } else if (e.type === "sample-drain" && this.autoAnswer) {
        this.#absorb(this.core.handle({ type: "drain-sampled", queued: this.queued }, this.now));
      } else if (e.type === "sweep-group" && this.autoAnswer) {
        const members = this.groups.get(e.pgid) ?? 0;
        if (e.signal === "SIGKILL") this.groups.delete(e.pgid);
        this.#absorb(
          this.core.handle({ type: "group-swept", pgid: e.pgid, members }, this.now),
        );
      }
    }
  }

  send(event: Event<Ctx>): Effect<Ctx>[] {
    const before = this.effects.length;
    this.#absorb(this.core.handle(event, this.now));
    return this.effects.slice(before);
  }

  /** Moves the clock to `ms` later, firing ticks at every deadline on the way. */
  advance(ms: number): Effect<Ctx>[] {
    const before = this.effects.length;
    const end = this.now + ms;
    for (let spins = 0;; spins++) {
      const due = this.core.nextDeadline();
      if (due === undefined || due > end) break;
      // A deadline that handling does not move would spin the real timer.
      if (spins > 10_000) throw new Error(`deadline ${due} never clears`);
      this.now = Math.max(this.now, due);
      this.#absorb(this.core.handle({ type: "tick" }, this.now));
    }
    this.now = end;
    return this.effects.slice(before);
  }

  exit(pid: number, code = 0, signal: string | null = null): Effect<Ctx>[] {
    return this.send({ type: "exited", serial: this.serialOf.get(pid)!, code, signal });
  }

  /** Registers the pids of inherited workers (they were never spawned here). */
  adoptInherited(): void {
    for (const w of this.core.snapshot().workers) {
      if (w.pid !== undefined && !this.serialOf.has(w.pid)) {
        this.pids.set(w.serial, w.pid);
        this.serialOf.set(w.pid, w.serial);
      }
    }
  }

  live() {
    return this.core.snapshot().workers;
  }

  pidsOf(filter: (w: ReturnType<Sim["live"]>[number]) => boolean = () => true): number[] {
    return this.live().filter(filter).map((w) => w.pid!).sort((a, b) => a - b);
  }

  /** Pids sent `signal` within `effects`. */
  killed(effects: Effect<Ctx>[], signal: string): number[] {
    return effects.filter((e) => e.type === "kill" && e.signal === signal)
      .map((e) => this.pids.get((e as { serial: number }).serial)!).sort((a, b) => a - b);
  }
}

export const spawns = (effects: Effect<Ctx>[]) =>
  effects.filter((e) => e.type === "spawn") as Extract<Effect<Ctx>, { type: "spawn" }>[];
export const exits = (effects: Effect<Ctx>[]) => effects.filter((e) => e.type === "exit");

/**
 * Throws when a log template names a property (`{worker.id}`, `{reason}`)
 * that its props do not hold: such a line would read "undefined". Every
 * log effect a {@link Sim} sees is checked.
 */
export function checkLogTemplate(message: string, props: Record<string, unknown>): void {
  for (const [, path] of message.matchAll(/\{([^{}]+)\}/g)) {
    let value: unknown = props;
    for (const key of path.split(".")) {
      value = typeof value === "object" && value !== null
        ? (value as Record<string, unknown>)[key]
        : undefined;
    }
    if (value === undefined) {
      throw new Error(`log template ${JSON.stringify(message)}: {${path}} is not in its props`);
    }
  }
}
