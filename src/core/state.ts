/**
 * The state the master's pure core decides on, and the small steps every
 * part of the core shares: start a worker, ask one to stop, stop the master,
 * log. {@link CoreState} is owned by one {@link MasterCore} (core.ts); the
 * decision modules (deadlines.ts, exits.ts, reconcile.ts) are functions over
 * it, so each concern lives in its own file while the state has one owner.
 * The records it holds and the lifecycle constants are in records.ts.
 *
 * Invariants:
 * - No I/O and no clock: time is passed in; what to do is pushed as effects.
 * - The core never signals a process that is not a worker record; effects
 *   name workers by serial, and only the executor knows processes.
 *
 * @module
 */

import type { LogEvent, WorkerRef } from "./log_events.ts";
import {
  type Effect,
  type Level,
  type Settings,
  STOP_REASON_TEXT,
  type StopReason,
  type WorkerSignal,
} from "./events.ts";
import {
  CANNOT_BOOT_AFTER,
  type CoreCounters,
  type GenerationRecord,
  type Phase,
  QUICK_GRACE_MS,
  RELEASE_MEMORY_AFTER_MS,
  RELEASE_MEMORY_AT_MOST_MS,
  type SlotRecord,
  type WorkerRecord,
} from "./records.ts";
import type { RolloutRecord } from "./rollout.ts";
import { SaturationPolicy, type SaturationSettings } from "./saturation_policy.ts";
import { type CoreSnapshot, snapshotOf } from "./snapshot.ts";
import type { LeftoverGroup, StopSteps } from "./stop.ts";

export type { CoreSnapshot };
export {
  ABANDON_AFTER_FAILURES,
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  CANNOT_BOOT_AFTER,
  type CoreCounters,
  type FailingSlot,
  type GenerationRecord,
  type Phase,
  QUICK_GRACE_MS,
  RELEASE_MEMORY_AFTER_MS,
  RELEASE_MEMORY_AT_MOST_MS,
  SETTLE_MS,
  type SlotRecord,
  STABLE_MS,
  TRIM_AFTER_COLLECT_MS,
  type WorkerRecord,
} from "./records.ts";

/** The core's state and the steps shared by its decision modules. `C` is the spawn context. */
export class CoreState<C> {
  readonly workers = new Map<number, WorkerRecord>();
  readonly slots = new Map<number, SlotRecord>();
  readonly generations = new Map<number, GenerationRecord<C>>();
  current: GenerationRecord<C>;
  /** The generation a rollout started from, while its workers remain. */
  previous?: GenerationRecord<C>;
  desired: number;
  phase: Phase = { kind: "running" };
  reloading = false;
  reloadQueued = false;
  /** A loaded config waiting for its `on_reload` hook's verdict. */
  vetting?: { settings: Settings; context: C };
  upgrading = false;
  exited = false;
  /** Some worker has been ready: from then on a boot failure never halts the master. */
  served = false;
  /** The latest rollout and its outcome. */
  rollout?: RolloutRecord;
  /** Pauses of the master noticed (see `onStalled`). */
  stalls = 0;
  nextSerial = 1;
  /**
   * systemd's watchdog: ping every `intervalMs` (half its `WATCHDOG_USEC`)
   * from the loop, so a stuck loop stops the pings. Unset when not asked.
   */
  servicePing?: { intervalMs: number; lastAt: number };
  /** When inherited workers are next polled for exit (while any lives). */
  reapPollAt = 0;
  /** When the master next collects its garbage (deadlines.ts), after workers came or went; unset when done. */
  releaseMemoryAt?: number;
  /** When the churn that collection follows began (the first start or exit since the last one). */
  churnSince?: number;
  /** When the C heap is trimmed, `TRIM_AFTER_COLLECT_MS` (records.ts) after that collection; unset when done. */
  trimHeapAt?: number;
  /** A graceful stop's steps before the workers get SIGTERM (stop.ts). */
  stopSteps?: StopSteps;
  /** Process groups of gone workers that may still hold processes, by pgid (stop.ts). */
  readonly leftovers = new Map<number, LeftoverGroup>();
  readonly counters: CoreCounters = {
    restarts: 0,
    bootFailures: 0,
    timeouts: 0,
    reloads: 0,
    exits: {},
  };
  readonly random: () => number;
  /** Saturation (docs/saturation.md): autoscaling and the memory watch (both off unless configured). */
  readonly policy: SaturationPolicy;
  #effects: Effect<C>[] = [];

  constructor(current: GenerationRecord<C>, random: () => number, now: number) {
    this.current = current;
    this.generations.set(current.number, current);
    this.desired = current.settings.workers;
    this.random = random;
    this.policy = new SaturationPolicy(saturationOf(current.settings), now);
  }

  get running(): boolean {
    return this.phase.kind === "running";
  }

  emit(effect: Effect<C>): void {
    this.#effects.push(effect);
  }

  /** Logs the line `event` (a stable name, see log_events.ts) with its readable `message`. */
  log(level: Level, event: LogEvent, message: string, props?: Record<string, unknown>): void {
    this.emit({ type: "log", level, event, message, props });
  }

  /** The effects decided since the last call. */
  take(): Effect<C>[] {
    const effects = this.#effects;
    this.#effects = [];
    return effects;
  }

  settingsOf(w: WorkerRecord): Settings {
    return this.generations.get(w.generation)?.settings ?? this.current.settings;
  }

  slot(slot: number): SlotRecord {
    let record = this.slots.get(slot);
    if (!record) {
      record = { bootFailures: 0, retryAt: 0, restarts: 0 };
      this.slots.set(slot, record);
    }
    return record;
  }

  /** Clears every slot's back-off: a fresh (or restored) generation gets fresh chances. */
  resetBackoff(): void {
    for (const slot of this.slots.values()) {
      slot.bootFailures = 0;
      slot.retryAt = 0;
      slot.bootFailure = undefined;
    }
  }

  /**
   * A worker came or went: starting and reaping processes is what leaves
   * garbage in the master (V8's heap, freed buffers in the C heap), so give
   * it back once things have been quiet for {@link RELEASE_MEMORY_AFTER_MS},
   * and at least every {@link RELEASE_MEMORY_AT_MOST_MS} while they are not.
   */
  churned(now: number): void {
    this.churnSince ??= now;
    this.releaseMemoryAt = Math.min(
      now + RELEASE_MEMORY_AFTER_MS,
      this.churnSince + RELEASE_MEMORY_AT_MOST_MS,
    );
  }

  spawn(slot: number, now: number): void {
    this.slot(slot).retryAt = 0;
    this.churned(now);
    const serial = this.nextSerial++;
    const gen = this.current;
    this.workers.set(serial, {
      serial,
      slot,
      generation: gen.number,
      state: "booting",
      spawnedAt: now,
      killSent: false,
      superseded: false,
    });
    // The try that will say "cannot boot" keeps its stderr; earlier ones need not.
    const captureStderr = (this.slot(slot).bootFailure?.inARow ?? 0) >= CANNOT_BOOT_AFTER - 1;
    this.emit({
      type: "spawn",
      serial,
      slot,
      generation: gen.number,
      context: gen.context,
      captureStderr,
    });
  }

  /** Asks a worker to stop; one already stopping is only ever made quicker. */
  stopWorker(
    w: WorkerRecord,
    signal: WorkerSignal,
    reason: StopReason,
    now: number,
    graceMs: number,
  ): void {
    // A watchdog's SIGABRT is for the stuck process itself (its core dump);
    // every signal that asks a worker to stop goes to its whole group.
    const group = signal !== "SIGABRT";
    if (w.state === "stopping" && w.killAt !== undefined) {
      if (reason === "master-quick-stop" && w.stopReason !== reason) {
        w.stopReason = reason;
        this.emit({ type: "kill", serial: w.serial, signal, reason, group });
      }
      w.killAt = Math.min(w.killAt, now + graceMs);
      return;
    }
    w.state = "stopping";
    w.stopReason = reason;
    w.killAt = now + graceMs;
    this.emit({ type: "kill", serial: w.serial, signal, reason, group });
  }

  /** What workers of `w`'s generation get on a quick stop. */
  quickSignal(w: WorkerRecord): WorkerSignal {
    return this.settingsOf(w).quickStopSignal ?? "SIGINT";
  }

  /**
   * Begins (or quickens) the master's stop; `reason` is logged as is.
   * `delayMs`: keep serving this long first (`shutdown_delay`; TERM only).
   * A graceful stop's SIGTERM comes from stop.ts once its steps are done.
   */
  stop(
    phase: { quick: boolean; code: number; reason: string; delayMs?: number },
    now: number,
  ): void {
    const current = this.phase;
    if (current.kind === "stopping") {
      if (current.quick || !phase.quick) return;
      this.log(
        "info",
        "stop.quickened",
        "{reason}: turning the graceful stop into a quick one",
        phase,
      );
      this.phase = { kind: "stopping", quick: true, code: current.code };
    } else {
      this.log("info", "stop.started", "{reason}", phase);
      this.phase = { kind: "stopping", quick: phase.quick, code: phase.code };
      this.emit({ type: "stopping" });
    }
    this.reloadQueued = false;
    if (!phase.quick) {
      this.stopSteps = { step: "delay", until: now + (phase.delayMs ?? 0) };
      return;
    }
    this.stopSteps = undefined;
    for (const w of this.workers.values()) {
      this.stopWorker(w, this.quickSignal(w), "master-quick-stop", now, QUICK_GRACE_MS);
    }
  }

  markReady(w: WorkerRecord, now: number, why: string): void {
    this.served = true;
    w.state = "ready";
    w.readyAt = now;
    const s = this.settingsOf(w);
    if (s.maxLifetimeMs > 0) {
      w.recycleAt = now + s.maxLifetimeMs + Math.floor(this.random() * s.maxLifetimeJitterMs);
    }
    this.log("info", "worker.ready", "worker {worker.id} (pid {worker.pid}) is ready ({why})", {
      worker: workerRef(w),
      why,
    });
    this.slot(w.slot).bootFailure = undefined; // it can boot after all
    if (w.usr1Pending) {
      w.usr1Pending = false;
      this.emit({ type: "kill", serial: w.serial, signal: "SIGUSR1" });
    }
  }

  /** A copy of the state for status and metrics. */
  snapshot(): CoreSnapshot {
    return snapshotOf(this);
  }

  /** Makes `generation` the serving one and tells the executor to adopt its config. */
  serve(generation: GenerationRecord<C>, now: number): void {
    this.current = generation;
    // With autoscale on, the count autoscaling reached stays (within the new bounds).
    const settings = generation.settings;
    this.desired = this.policy.reconfigure(
      saturationOf(settings),
      now,
      this.desired,
      settings.workers,
    );
    this.emit({ type: "adopt-config", context: generation.context });
  }

  /** Forgets generations that are not current and have no workers left. */
  retireEmptyGenerations(): void {
    for (const number of [...this.generations.keys()]) {
      if (number === this.current.number) continue;
      if (!this.workers.values().some((w) => w.generation === number)) {
        this.generations.delete(number);
        if (this.previous?.number === number) {
          this.previous = undefined;
          this.upgrading = false;
        }
        this.emit({ type: "retire-generation", generation: number });
      }
    }
  }

  /** The lowest free slots of the current generation, as many as workers are missing. */
  freeSlots(): number[] {
    const gen = this.current.number;
    const taken = new Set<number>();
    for (const w of this.workers.values()) {
      if (w.generation === gen && w.state !== "stopping" && !w.superseded) taken.add(w.slot);
    }
    const free: number[] = [];
    for (let slot = 0; free.length < this.desired - taken.size; slot++) {
      if (!taken.has(slot)) free.push(slot);
    }
    return free;
  }

  /** A rollout or a recycle is under way: at most one replacement wave at a time. */
  recycleInProgress(): boolean {
    return this.previous !== undefined ||
      this.workers.values().some((w) => w.superseded && w.state !== "stopping");
  }

  /** Ready workers of the current generation that are not being replaced. */
  readyCurrent(): number {
    let ready = 0;
    for (const w of this.workers.values()) {
      if (w.state === "ready" && w.generation === this.current.number && !w.superseded) ready++;
    }
    return ready;
  }

  hasReadyOlderWorkers(): boolean {
    for (const w of this.workers.values()) {
      if (w.generation !== this.current.number && w.state === "ready") return true;
    }
    return false;
  }
}

/** A generation's saturation settings; both features off when it has none. */
export function saturationOf(settings: Settings): SaturationSettings {
  return settings.saturation ?? { memory: { limitBytes: 0, windowMs: 0 } };
}

/** The log text of a stop reason (for log lines that name it). */
export function stopReasonText(reason: StopReason | undefined): string | undefined {
  return reason === undefined ? undefined : STOP_REASON_TEXT[reason];
}

/** The worker a log line is about, as every line shows it (`props.worker`). */
export function workerRef(w: WorkerRecord): WorkerRef {
  return { id: w.slot, pid: w.pid, generation: w.generation };
}
