/**
 * The master's decisions, without any I/O: given its state and one event,
 * what to do. {@link MasterCore.handle} takes an event and the monotonic time
 * and returns effects; the loop carries them out and feeds back what happened
 * (a pid, an exit) as further events. Tested in `core_test.ts` without
 * processes.
 *
 * Model (Gunicorn's, made readiness-aware):
 * - Handlers only change the *desired* state: the worker count, the current
 *   generation, the phase. One {@link MasterCore.reconcile} step then makes
 *   the workers match it, oldest first.
 * - A worker is `booting` until ready (settle delay, or `READY=1`), then
 *   `ready`, then `stopping` once it was sent a stop signal.
 * - Each worker has a slot (0…N-1, its `ARBITER_WORKER_ID`) that its
 *   replacement inherits. A slot whose worker keeps dying before it is ready
 *   is retried with exponential back-off.
 * - A reload starts a new generation; old workers, and workers past their
 *   maximum age ("superseded"), are retired only as new ones become ready,
 *   so the number of ready workers never drops during a rollout. A new
 *   generation that cannot boot is abandoned and the previous one stays.
 * - Invariant: the core never signals a process that is not a worker record;
 *   effects name workers by serial, and only the executor knows processes.
 *
 * @module
 */

import type { Effect, Event, Level, Settings, WorkerSignal } from "./events.ts";

/** How long a worker must run without exiting to count as ready with `ready = "spawn"`. */
export const SETTLE_MS = 1000;
/** Grace between SIGQUIT (quick stop) or SIGABRT (watchdog) and SIGKILL. */
export const QUICK_GRACE_MS = 1000;
/** First boot back-off step; it doubles per consecutive failure. */
export const BACKOFF_BASE_MS = 100;
/** Largest boot back-off. */
export const BACKOFF_MAX_MS = 10_000;
/** A worker that stayed ready this long clears its slot's failure count. */
export const STABLE_MS = 5000;
/** Boot failures of a new generation, while an older one serves, that abandon a reload. */
export const ABANDON_AFTER_FAILURES = 3;

/** Exit codes of a worker that mean "this app cannot start" (Gunicorn's). */
const HALTING_CODES = new Set([3, 4]);
/** Exit codes of the exec shim: the command could not be executed. */
const EXEC_FAILURE_CODES = new Set([126, 127]);

/** A worker as the core sees it. */
export interface WorkerRecord {
  readonly serial: number;
  readonly slot: number;
  readonly generation: number;
  pid?: number;
  state: "booting" | "ready" | "stopping";
  spawnedAt: number;
  readyAt?: number;
  /** Why it is stopping, for logs and status. */
  stopReason?: string;
  /** When to SIGKILL it if it is still alive. */
  killAt?: number;
  killSent: boolean;
  /** True when it is stopping because it never became ready (counts as a failed boot). */
  failedBoot: boolean;
  /** Last `WATCHDOG=1`; the watchdog is armed from the first one on. */
  lastPing?: number;
  /** Age limit reached: retired once a replacement is ready. */
  superseded: boolean;
  /** When it reaches its maximum age (when recycling is on). */
  recycleAt?: number;
  /** Last `STATUS=` it sent. */
  status?: string;
}

/** Per-slot history. */
export interface SlotRecord {
  bootFailures: number;
  retryAt: number;
  restarts: number;
  lastExit?: string;
}

type Phase =
  | { kind: "running" }
  | { kind: "stopping"; quick: boolean; code: number };

interface Generation<C> {
  number: number;
  settings: Settings;
  context: C;
  bootFailures: number;
  /** Whether "generation N is ready" was announced. */
  readyAnnounced: boolean;
}

/** Read-only view for status reports. */
export interface CoreSnapshot {
  generation: number;
  desiredWorkers: number;
  phase: "running" | "stopping";
  reloading: boolean;
  workers: ReadonlyArray<Readonly<WorkerRecord> & { restarts: number; lastExit?: string }>;
}

/** Options for {@link MasterCore}. */
export interface CoreOptions {
  /** Random number in [0, 1) for lifetime jitter; injectable for tests. */
  random?: () => number;
  /** Workers taken over from the image before an in-place upgrade. */
  inherited?: { generation: number; workers: { pid: number; slot: number }[] };
  /** The time of construction (for inherited workers' age). */
  now?: number;
}

/** The master's state and decisions. `C` is the spawn context of a generation. */
export class MasterCore<C> {
  #workers = new Map<number, WorkerRecord>();
  #slots = new Map<number, SlotRecord>();
  #generations = new Map<number, Generation<C>>();
  #current: Generation<C>;
  /** The generation a rollout started from, while its workers remain. */
  #previous?: Generation<C>;
  #desired: number;
  #phase: Phase = { kind: "running" };
  #reloading = false;
  #reloadQueued = false;
  #upgrading = false;
  #exited = false;
  #nextSerial = 1;
  #random: () => number;
  #effects: Effect<C>[] = [];

  constructor(settings: Settings, context: C, options: CoreOptions = {}) {
    const inherited = options.inherited;
    const number = inherited ? inherited.generation + 1 : 1;
    this.#current = { number, settings, context, bootFailures: 0, readyAnnounced: false };
    this.#generations.set(number, this.#current);
    this.#desired = settings.workers;
    this.#random = options.random ?? Math.random;
    if (inherited) {
      // Workers of the image before an in-place upgrade: an older generation
      // that serves until the new one is ready, exactly like a reload.
      const old: Generation<C> = {
        number: inherited.generation,
        settings,
        context,
        bootFailures: 0,
        readyAnnounced: true,
      };
      this.#generations.set(old.number, old);
      this.#previous = old;
      this.#upgrading = true; // until the new generation has replaced the old one
      for (const { pid, slot } of inherited.workers) {
        const serial = this.#nextSerial++;
        this.#workers.set(serial, {
          serial,
          slot,
          generation: old.number,
          pid,
          state: "ready",
          spawnedAt: options.now ?? 0,
          readyAt: options.now ?? 0,
          killSent: false,
          failedBoot: false,
          superseded: false,
        });
      }
    }
  }

  /** The first step: spawn the initial workers. */
  start(now: number): Effect<C>[] {
    this.#log("info", "starting {workers} worker(s) of {command}", {
      workers: this.#desired,
      command: this.#current.settings.commandName,
    });
    this.reconcile(now);
    return this.#take();
  }

  /** Handles one event and returns what to do. */
  handle(event: Event<C>, now: number): Effect<C>[] {
    switch (event.type) {
      case "signal":
        this.#onSignal(event.signal, event.hasTerminal ?? false, now);
        break;
      case "request":
        this.#onRequest(event.action, event.source, now);
        break;
      case "spawned":
        this.#onSpawned(event.serial, event.pid);
        break;
      case "spawn-failed":
        this.#onSpawnFailed(event.serial, event.error, now);
        break;
      case "exited":
        this.#onExited(event.serial, event.code, event.signal, now);
        break;
      case "notify":
        this.#onNotify(event.serial, event.fields, now);
        break;
      case "tick":
      case "probe":
        break;
      case "config-loaded":
        this.#onConfigLoaded(event.settings, event.context);
        break;
      case "config-failed":
        this.#onConfigFailed(event.error);
        break;
      case "scale":
        this.#scaleTo(event.workers, "control request");
        break;
      case "upgrade-checked":
        this.#onUpgradeChecked(event.error);
        break;
    }
    this.reconcile(now);
    return this.#take();
  }

  /** The earliest time at which something is due, or undefined when nothing is. */
  nextDeadline(): number | undefined {
    let next = Infinity;
    const recycling = this.#recycleInProgress();
    for (const w of this.#workers.values()) {
      if (w.killAt !== undefined && !w.killSent) next = Math.min(next, w.killAt);
      if (w.state === "booting") {
        const s = this.#settingsOf(w);
        if (s.ready === "spawn") next = Math.min(next, w.spawnedAt + SETTLE_MS);
        if (s.bootTimeoutMs > 0) next = Math.min(next, w.spawnedAt + s.bootTimeoutMs);
      }
      if (
        w.state !== "stopping" && w.lastPing !== undefined && this.#settingsOf(w).watchdogMs > 0
      ) {
        next = Math.min(next, w.lastPing + this.#settingsOf(w).watchdogMs);
      }
      if (w.state === "ready" && w.recycleAt !== undefined && !w.superseded && !recycling) {
        next = Math.min(next, w.recycleAt);
      }
    }
    if (this.#phase.kind === "running") {
      for (const slot of this.#freeSlots()) {
        const retryAt = this.#slot(slot).retryAt;
        if (retryAt > 0) next = Math.min(next, retryAt);
      }
    }
    return Number.isFinite(next) ? next : undefined;
  }

  /** A read-only view of the state, for status and metrics. */
  snapshot(): CoreSnapshot {
    return {
      generation: this.#current.number,
      desiredWorkers: this.#desired,
      phase: this.#phase.kind,
      reloading: this.#reloading || this.#previous !== undefined,
      workers: [...this.#workers.values()].map((w) => ({
        ...w,
        restarts: this.#slots.get(w.slot)?.restarts ?? 0,
        lastExit: this.#slots.get(w.slot)?.lastExit,
      })),
    };
  }

  /** The spawn context of the current generation. */
  get currentContext(): C {
    return this.#current.context;
  }

  /** Whether the master is stopping. */
  get stopping(): boolean {
    return this.#phase.kind === "stopping";
  }

  // ---- event handlers: they change desired state; reconcile acts on it ----

  #onSignal(signal: string, hasTerminal: boolean, now: number): void {
    switch (signal) {
      case "SIGTERM":
        this.#stop({ quick: false, code: 0, reason: "SIGTERM: stopping gracefully" }, now);
        return;
      case "SIGINT":
      case "SIGQUIT":
        this.#stop({ quick: true, code: 0, reason: `${signal}: stopping quickly` }, now);
        return;
      case "SIGUSR1":
        this.#emit({ type: "reopen-logs" });
        // Only to ready workers: one still booting (or still the exec shim) may
        // not handle USR1 yet, and its default action is to terminate.
        for (const w of this.#workers.values()) {
          if (w.state === "ready") {
            this.#emit({ type: "kill", serial: w.serial, signal: "SIGUSR1" });
          }
        }
        return;
      case "SIGCHLD":
        return;
    }
    if (this.#phase.kind === "stopping") {
      this.#log("info", "{signal} ignored: the master is stopping", { signal });
      return;
    }
    switch (signal) {
      case "SIGHUP":
        this.#requestReload();
        return;
      case "SIGTTIN":
        this.#scaleTo(this.#desired + 1, "SIGTTIN");
        return;
      case "SIGTTOU":
        if (this.#desired <= 1) {
          this.#log("info", "SIGTTOU ignored: already at {count} worker(s), the minimum is 1", {
            count: this.#desired,
          });
        } else this.#scaleTo(this.#desired - 1, "SIGTTOU");
        return;
      case "SIGWINCH":
        if (hasTerminal) {
          this.#log("debug", "SIGWINCH ignored: the master has a controlling terminal");
        } else {
          this.#log(
            "info",
            "SIGWINCH: stopping all workers; the master stays (HUP or TTIN restarts them)",
          );
          this.#desired = 0;
        }
        return;
      case "SIGUSR2":
        this.#requestUpgrade();
        return;
    }
  }

  #onRequest(
    action: "reload" | "upgrade" | "stop" | "quick-stop",
    source: string,
    now: number,
  ): void {
    if (action === "stop") {
      this.#stop({ quick: false, code: 0, reason: `${source}: stopping gracefully` }, now);
    } else if (action === "quick-stop") {
      this.#stop({ quick: true, code: 0, reason: `${source}: stopping quickly` }, now);
    } else if (this.#phase.kind === "stopping") {
      this.#log("info", "{source} ignored: the master is stopping", { source });
    } else if (action === "reload") this.#requestReload(source);
    else this.#requestUpgrade(source);
  }

  #requestUpgrade(source = "SIGUSR2"): void {
    const busy = this.#upgrading
      ? "an upgrade is already in progress"
      : this.#reloading || this.#previous
      ? "a reload is in progress"
      : undefined;
    if (busy) {
      this.#log("warning", "{source} refused: {busy}", { source, busy });
      return;
    }
    this.#upgrading = true;
    this.#log("info", "{source}: checking the new master before upgrading in place", { source });
    this.#emit({ type: "check-upgrade" });
  }

  #onUpgradeChecked(error: string | undefined): void {
    if (error === undefined && this.#phase.kind === "running" && !this.#reloading) {
      this.#log("info", "upgrading in place: re-executing the master (pid kept)");
      this.#emit({ type: "exec-upgrade", generation: this.#current.number });
      return; // if the exec fails, another upgrade-checked event with the error follows
    }
    this.#upgrading = false;
    this.#log("error", "upgrade refused, nothing changed: {error}", {
      error: error ?? "the master is stopping or reloading",
    });
  }

  #scaleTo(count: number, why: string): void {
    if (this.#phase.kind === "stopping") return;
    if (count === this.#desired) return;
    this.#log("info", "{why}: workers {from} -> {to}", { why, from: this.#desired, to: count });
    this.#desired = count;
  }

  #requestReload(source = "SIGHUP"): void {
    if (this.#upgrading) {
      this.#log("warning", "reload refused: an upgrade is in progress");
      return;
    }
    if (this.#reloading) {
      this.#reloadQueued = true;
      this.#log("info", "{source}: a reload is being prepared; another one will follow it", {
        source,
      });
      return;
    }
    this.#reloading = true;
    this.#log("info", "{source}: reloading the configuration", { source });
    this.#emit({ type: "load-config" });
  }

  #onConfigLoaded(settings: Settings, context: C): void {
    this.#reloading = false;
    if (this.#phase.kind === "stopping") return;
    this.#previous = this.#current;
    const number = Math.max(...this.#generations.keys()) + 1;
    this.#current = { number, settings, context, bootFailures: 0, readyAnnounced: false };
    this.#generations.set(number, this.#current);
    this.#desired = settings.workers;
    // A fresh generation gets fresh chances: old back-off belongs to old code.
    for (const slot of this.#slots.values()) {
      slot.bootFailures = 0;
      slot.retryAt = 0;
    }
    this.#log("info", "generation {generation}: starting {workers} worker(s) of {command}", {
      generation: number,
      workers: settings.workers,
      command: settings.commandName,
    });
    this.#runQueuedReload();
  }

  #onConfigFailed(error: string): void {
    this.#reloading = false;
    this.#log("error", "reload refused, keeping the running configuration: {error}", { error });
    this.#emit({ type: "reload-done" });
    this.#runQueuedReload();
  }

  /** A HUP that came while the config was being read runs now. */
  #runQueuedReload(): void {
    if (this.#reloadQueued && this.#phase.kind === "running") {
      this.#reloadQueued = false;
      this.#requestReload();
    }
  }

  #onSpawned(serial: number, pid: number): void {
    const w = this.#workers.get(serial);
    if (!w) return;
    w.pid = pid;
    this.#log("info", "worker {id} (pid {pid}) started, generation {generation}", {
      id: w.slot,
      pid,
      generation: w.generation,
    });
  }

  #onSpawnFailed(serial: number, error: string, now: number): void {
    const w = this.#workers.get(serial);
    if (!w) return;
    this.#workers.delete(serial);
    this.#log("error", "worker {id}: could not start a process: {error}", { id: w.slot, error });
    this.#countBootFailure(w, now, "spawn failed");
    this.#retireEmptyGenerations();
  }

  #onExited(serial: number, code: number, signal: string | null, now: number): void {
    const w = this.#workers.get(serial);
    if (!w) return;
    this.#workers.delete(serial);
    const slot = this.#slot(w.slot);
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    const props = { id: w.slot, pid: w.pid ?? "?", how, reason: w.stopReason };
    const wasStopping = w.state === "stopping";
    const ready = w.state === "ready" || w.readyAt !== undefined;
    slot.lastExit = signal ?? `code ${code}`;

    if (wasStopping && !w.failedBoot) {
      this.#log("info", "worker {id} (pid {pid}) stopped ({reason}): {how}", props);
    } else if (!wasStopping && signal === null && code === 0) {
      this.#log(
        "info",
        "worker {id} (pid {pid}) exited on its own with code 0; replacing it",
        props,
      );
    } else if (signal === "SIGKILL" && !w.killSent) {
      this.#log(
        "error",
        "worker {id} (pid {pid}) was killed by SIGKILL (perhaps out of memory?)",
        props,
      );
    } else if (!wasStopping) {
      this.#log("error", "worker {id} (pid {pid}) {how}", props);
    }

    if (this.#phase.kind === "running" && !ready && (!wasStopping || w.failedBoot)) {
      this.#onBootFailure(w, code, signal, now);
    } else if (!wasStopping || w.stopReason === "timeout") {
      slot.restarts++;
      // A worker that served a while clears its slot's record; one that died
      // soon after becoming ready keeps its back-off where it was.
      if (w.readyAt !== undefined && now - w.readyAt >= STABLE_MS) slot.bootFailures = 0;
      slot.retryAt = 0;
    }
    this.#retireEmptyGenerations();
  }

  #onBootFailure(w: WorkerRecord, code: number, signal: string | null, now: number): void {
    const inRollout = this.#previous !== undefined && w.generation === this.#current.number &&
      this.#hasReadyOlderWorkers();
    const execFailed = signal === null && EXEC_FAILURE_CODES.has(code);
    const halting = signal === null && HALTING_CODES.has(code);
    if (execFailed || halting) {
      const exitCode = execFailed ? 3 : code;
      const reason = execFailed
        ? `cannot execute the worker command ${JSON.stringify(this.#settingsOf(w).commandName)}`
        : `worker ${w.slot} failed to boot (exit code ${code}${
          code === 4 ? ": the app could not be loaded" : ""
        })`;
      if (inRollout) {
        this.#abandonRollout(reason, now);
      } else if (w.generation === this.#current.number) {
        this.#log("error", "halting: {reason}", { reason });
        this.#stop(
          { quick: false, code: exitCode, reason: `halting with exit code ${exitCode}` },
          now,
        );
      }
      return;
    }
    this.#countBootFailure(w, now, signal ? `killed by ${signal}` : `exit code ${code}`);
    if (inRollout && this.#current.bootFailures >= ABANDON_AFTER_FAILURES) {
      this.#abandonRollout(`${this.#current.bootFailures} workers failed to boot`, now);
    }
  }

  #countBootFailure(w: WorkerRecord, now: number, what: string): void {
    const slot = this.#slot(w.slot);
    slot.restarts++;
    slot.bootFailures++;
    const generation = this.#generations.get(w.generation);
    if (generation) generation.bootFailures++;
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** (slot.bootFailures - 1), BACKOFF_MAX_MS);
    slot.retryAt = now + delay;
    const level: Level = delay === BACKOFF_MAX_MS && slot.bootFailures > 8 ? "debug" : "warning";
    this.#log(
      level,
      "worker {id} failed to boot ({what}), {count} time(s) in a row; retrying in {delay} s",
      {
        id: w.slot,
        what,
        count: slot.bootFailures,
        delay: delay / 1000,
      },
    );
  }

  #abandonRollout(reason: string, now: number): void {
    const previous = this.#previous!;
    const failed = this.#current;
    this.#log("error", "reload abandoned ({reason}); generation {old} keeps serving", {
      reason,
      old: previous.number,
    });
    for (const w of this.#workers.values()) {
      if (w.generation === failed.number && w.state !== "stopping") {
        this.#stopWorker(
          w,
          "SIGTERM",
          "reload abandoned",
          now,
          this.#settingsOf(w).gracefulTimeoutMs,
        );
      }
    }
    this.#current = previous;
    this.#previous = undefined;
    this.#upgrading = false;
    this.#desired = previous.settings.workers;
    this.#emit({ type: "reload-done" });
    for (const slot of this.#slots.values()) {
      slot.bootFailures = 0;
      slot.retryAt = 0;
    }
  }

  #onNotify(serial: number, fields: Record<string, string>, now: number): void {
    const w = this.#workers.get(serial);
    if (!w) return;
    if (fields.STATUS !== undefined) w.status = fields.STATUS;
    if (fields.WATCHDOG === "1") w.lastPing = now;
    if (fields.READY === "1" && w.state === "booting") this.#markReady(w, now, "READY=1");
    if (fields.STOPPING === "1" && w.state !== "stopping") {
      // It is leaving on its own: stop counting it so its replacement starts now.
      w.state = "stopping";
      w.stopReason = "worker said STOPPING=1";
      w.killAt = now + this.#settingsOf(w).gracefulTimeoutMs;
      this.#log("info", "worker {id} (pid {pid}) is stopping on its own", {
        id: w.slot,
        pid: w.pid,
      });
    }
  }

  #markReady(w: WorkerRecord, now: number, why: string): void {
    w.state = "ready";
    w.readyAt = now;
    const s = this.#settingsOf(w);
    if (s.maxLifetimeMs > 0) {
      w.recycleAt = now + s.maxLifetimeMs + Math.floor(this.#random() * s.maxLifetimeJitterMs);
    }
    this.#log("info", "worker {id} (pid {pid}) is ready ({why})", { id: w.slot, pid: w.pid, why });
  }

  #stop(phase: { quick: boolean; code: number; reason: string }, now: number): void {
    const current = this.#phase;
    if (current.kind === "stopping") {
      if (current.quick || !phase.quick) return;
      this.#log("info", "{reason}: turning the graceful stop into a quick one", phase);
      this.#phase = { kind: "stopping", quick: true, code: current.code };
    } else {
      this.#log("info", "{reason}", phase);
      this.#phase = { kind: "stopping", quick: phase.quick, code: phase.code };
      this.#emit({ type: "stopping" });
    }
    this.#reloadQueued = false;
    for (const w of this.#workers.values()) {
      const s = this.#settingsOf(w);
      if (phase.quick) {
        this.#stopWorker(w, "SIGQUIT", "the master is stopping quickly", now, QUICK_GRACE_MS);
      } else this.#stopWorker(w, "SIGTERM", "the master is stopping", now, s.gracefulTimeoutMs);
    }
  }

  // ---- reconcile: make the workers match the desired state ----

  /** Makes the processes match the desired state; also handles due deadlines. */
  reconcile(now: number): void {
    this.#handleDeadlines(now);
    if (this.#phase.kind === "stopping") {
      if (this.#workers.size === 0 && !this.#exited) {
        this.#exited = true;
        this.#log("info", "all workers are gone; exiting with code {code}", {
          code: this.#phase.code,
        });
        this.#emit({ type: "exit", code: this.#phase.code });
      }
      return;
    }
    this.#recycleOne(now);
    const gen = this.#current;
    const active = (w: WorkerRecord) => w.state !== "stopping";
    const current = [...this.#workers.values()].filter(
      (w) => active(w) && w.generation === gen.number && !w.superseded,
    );
    // Too many current workers (TTOU, scale down): the oldest go first, as in Gunicorn.
    if (current.length > this.#desired) {
      const victims = current.sort(byAge).slice(0, current.length - this.#desired);
      for (const w of victims) {
        this.#stopWorker(w, "SIGTERM", "scaled down", now, gen.settings.gracefulTimeoutMs);
      }
    }
    // Too few: fill the lowest free slots whose back-off has passed.
    for (const slot of this.#freeSlots()) {
      if (this.#slot(slot).retryAt <= now) this.#spawn(slot, now);
    }
    // Replaced workers (older generation, or past their age) go as new ones
    // become ready, so the count of ready workers never drops.
    const replaced = [...this.#workers.values()].filter(
      (w) => active(w) && (w.generation !== gen.number || w.superseded),
    );
    const readyCurrent = [...this.#workers.values()].filter(
      (w) => w.state === "ready" && w.generation === gen.number && !w.superseded,
    ).length;
    const surplus = replaced.length + readyCurrent - this.#desired;
    if (surplus > 0) {
      for (const w of replaced.sort(byRetirementOrder).slice(0, surplus)) {
        const reason = w.superseded ? "reached its maximum age" : "replaced by a new generation";
        this.#stopWorker(w, "SIGTERM", reason, now, this.#settingsOf(w).gracefulTimeoutMs);
      }
    }
    if (
      this.#previous &&
      !this.#workers.values().some((w) => active(w) && w.generation !== gen.number)
    ) {
      this.#previous = undefined; // rollout complete: nothing older is serving
      this.#upgrading = false;
    }
    if (!gen.readyAnnounced && this.#desired > 0 && readyCurrent >= this.#desired) {
      gen.readyAnnounced = true;
      this.#log("info", "generation {generation} is ready: {count} worker(s)", {
        generation: gen.number,
        count: readyCurrent,
      });
      this.#emit({ type: "generation-ready", generation: gen.number });
    }
  }

  /** Starts recycling one worker past its age, when none is being recycled. */
  #recycleOne(now: number): void {
    if (this.#recycleInProgress()) return;
    const due = [...this.#workers.values()]
      .filter((w) => w.state === "ready" && w.recycleAt !== undefined && w.recycleAt <= now)
      .sort((a, b) => a.recycleAt! - b.recycleAt!)[0];
    if (!due) return;
    due.superseded = true;
    this.#log("info", "worker {id} (pid {pid}) reached its maximum age; starting its replacement", {
      id: due.slot,
      pid: due.pid,
    });
  }

  /** A rollout or a recycle is under way: at most one replacement wave at a time. */
  #recycleInProgress(): boolean {
    return this.#previous !== undefined ||
      this.#workers.values().some((w) => w.superseded && w.state !== "stopping");
  }

  /** The lowest free slots, as many as workers are missing; reconcile fills them. */
  #freeSlots(): number[] {
    const gen = this.#current.number;
    const taken = new Set<number>();
    for (const w of this.#workers.values()) {
      if (w.generation === gen && w.state !== "stopping" && !w.superseded) taken.add(w.slot);
    }
    const free: number[] = [];
    for (let slot = 0; free.length < this.#desired - taken.size; slot++) {
      if (!taken.has(slot)) free.push(slot);
    }
    return free;
  }

  #handleDeadlines(now: number): void {
    for (const w of this.#workers.values()) {
      const s = this.#settingsOf(w);
      if (w.killAt !== undefined && !w.killSent && w.killAt <= now) {
        w.killSent = true;
        this.#log(
          "warning",
          "worker {id} (pid {pid}) did not exit in time ({reason}); sending SIGKILL",
          {
            id: w.slot,
            pid: w.pid,
            reason: w.stopReason,
          },
        );
        this.#emit({ type: "kill", serial: w.serial, signal: "SIGKILL" });
        continue;
      }
      if (w.state === "booting") {
        if (s.bootTimeoutMs > 0 && now - w.spawnedAt >= s.bootTimeoutMs && s.ready === "notify") {
          this.#log(
            "error",
            "worker {id} (pid {pid}) did not become ready within {timeout} s; aborting it",
            {
              id: w.slot,
              pid: w.pid,
              timeout: s.bootTimeoutMs / 1000,
            },
          );
          w.failedBoot = true;
          this.#stopWorker(w, "SIGABRT", "boot timeout", now, QUICK_GRACE_MS);
          continue;
        }
        if (s.ready === "spawn" && now - w.spawnedAt >= SETTLE_MS && w.pid !== undefined) {
          this.#markReady(w, now, "running for 1 s");
        }
      }
      if (
        w.state !== "stopping" && s.watchdogMs > 0 && w.lastPing !== undefined &&
        now - w.lastPing >= s.watchdogMs
      ) {
        this.#log(
          "error",
          "worker {id} (pid {pid}) timeout: no WATCHDOG=1 for {timeout} s; aborting it",
          {
            id: w.slot,
            pid: w.pid,
            timeout: s.watchdogMs / 1000,
          },
        );
        this.#stopWorker(w, "SIGABRT", "timeout", now, QUICK_GRACE_MS);
      }
    }
  }

  // ---- helpers ----

  #spawn(slot: number, now: number): void {
    this.#slot(slot).retryAt = 0;
    const serial = this.#nextSerial++;
    const gen = this.#current;
    this.#workers.set(serial, {
      serial,
      slot,
      generation: gen.number,
      state: "booting",
      spawnedAt: now,
      killSent: false,
      failedBoot: false,
      superseded: false,
    });
    this.#emit({ type: "spawn", serial, slot, generation: gen.number, context: gen.context });
  }

  #stopWorker(
    w: WorkerRecord,
    signal: WorkerSignal,
    reason: string,
    now: number,
    graceMs: number,
  ): void {
    if (w.state === "stopping" && w.killAt !== undefined) {
      // Already stopping: only ever make it quicker.
      if (signal === "SIGQUIT") this.#emit({ type: "kill", serial: w.serial, signal });
      w.killAt = Math.min(w.killAt, now + graceMs);
      return;
    }
    w.state = "stopping";
    w.stopReason = reason;
    w.killAt = now + graceMs;
    this.#emit({ type: "kill", serial: w.serial, signal });
  }

  #hasReadyOlderWorkers(): boolean {
    for (const w of this.#workers.values()) {
      if (w.generation !== this.#current.number && w.state === "ready") return true;
    }
    return false;
  }

  #retireEmptyGenerations(): void {
    for (const number of [...this.#generations.keys()]) {
      if (number === this.#current.number) continue;
      if (!this.#workers.values().some((w) => w.generation === number)) {
        this.#generations.delete(number);
        if (this.#previous?.number === number) {
          this.#previous = undefined;
          this.#upgrading = false;
        }
        this.#emit({ type: "retire-generation", generation: number });
      }
    }
  }

  #settingsOf(w: WorkerRecord): Settings {
    return this.#generations.get(w.generation)?.settings ?? this.#current.settings;
  }

  #slot(slot: number): SlotRecord {
    let record = this.#slots.get(slot);
    if (!record) {
      record = { bootFailures: 0, retryAt: 0, restarts: 0 };
      this.#slots.set(slot, record);
    }
    return record;
  }

  #log(level: Level, message: string, props?: Record<string, unknown>): void {
    this.#emit({ type: "log", level, message, props });
  }

  #emit(effect: Effect<C>): void {
    this.#effects.push(effect);
  }

  #take(): Effect<C>[] {
    const effects = this.#effects;
    this.#effects = [];
    return effects;
  }
}

/** Oldest first. */
function byAge(a: WorkerRecord, b: WorkerRecord): number {
  return a.spawnedAt - b.spawnedAt || a.serial - b.serial;
}

/** Rollout retirement order: workers not serving yet first, then the oldest. */
function byRetirementOrder(a: WorkerRecord, b: WorkerRecord): number {
  const rank = (w: WorkerRecord) => (w.state === "ready" ? 1 : 0);
  return rank(a) - rank(b) || a.spawnedAt - b.spawnedAt || a.serial - b.serial;
}
