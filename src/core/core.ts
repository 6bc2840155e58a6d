/**
 * The master's decisions, without any I/O: given its state and one event,
 * what to do. {@link MasterCore.handle} takes an event and the monotonic time
 * and returns effects; the executor (master.ts) carries them out and feeds
 * back what happened (a pid, an exit) as further events. Tested in
 * `core_test.ts` without processes.
 *
 * Model (Gunicorn's, made readiness-aware):
 * - Handlers only change the *desired* state: the worker count, the current
 *   generation, the phase. One reconcile step (reconcile.ts) then makes the
 *   workers match it, oldest first.
 * - A worker is `booting` until ready (settle delay, or `READY=1`), then
 *   `ready`, then `stopping` once it was sent a stop signal.
 * - Each worker has a slot (0…N-1, its `ARBITER_WORKER_ID`) that its
 *   replacement inherits. A slot whose worker keeps dying before it is ready
 *   is retried with exponential back-off (exits.ts).
 * - A reload starts a new generation; old workers, and workers past their
 *   maximum age ("superseded"), are retired only as new ones become ready.
 *   A new generation that cannot boot is abandoned and the previous one
 *   stays — with its own config, which the core tells the executor to adopt
 *   again (`adopt-config` is emitted exactly when the serving generation
 *   changes).
 * - Every request someone waits on is answered by a `reply` effect from
 *   here, so a caller hears what was decided, not what was hoped.
 *
 * Where the rest lives: the state and shared steps in state.ts, the
 * deadline table (every timer the master arms) in deadlines.ts, exit
 * judgement in exits.ts, autoscaling and memory recycling in saturation.ts.
 *
 * @module
 */

import { type CoreSnapshot, CoreState, type GenerationRecord, workerRef } from "./state.ts";
import { INHERITED_POLL_MS, nextDeadline } from "./deadlines.ts";
import { releaseAtStartUp } from "./start_up.ts";
import type {
  Effect,
  Event,
  MasterSignal,
  Reply,
  ReplyTo,
  RequestAction,
  Settings,
} from "./events.ts";
import { onExited, onSpawnFailed } from "./exits.ts";
import { reconcile } from "./reconcile.ts";
import * as reload from "./reload.ts";
import * as saturation from "./saturation.ts";
import { beginStop, onDrainSampled, onGroupSwept, onWorkerGone } from "./stop.ts";
import { backOffEarlyEnd, endsEarly } from "./restarts.ts";
import { beginRollout, endRollout } from "./rollout.ts";
import { onStalled } from "./stall.ts";
import { onListenersRestored } from "./listeners.ts";

export {
  ABANDON_AFTER_FAILURES,
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  CANNOT_BOOT_AFTER,
  type CoreCounters,
  type CoreSnapshot,
  QUICK_GRACE_MS,
  SETTLE_MS,
  STABLE_MS,
  type WorkerRecord,
} from "./state.ts";
export { earlyEndDelay, MAX_STOPPING_PER_SLOT } from "./restarts.ts";
export type { RolloutRecord } from "./rollout.ts";
export { STALL_MS } from "./stall.ts";

/** Options for {@link MasterCore}. */
export interface CoreOptions {
  /** Random number in [0, 1) for lifetime jitter; injectable for tests. */
  random?: () => number;
  /** Workers taken over from the image before an in-place upgrade. */
  inherited?: { generation: number; workers: { pid: number; slot: number }[] };
  /** The time of construction (for inherited workers' age). */
  now?: number;
  /** systemd's watchdog ping interval (half its `WATCHDOG_USEC`), when it asked for pings. */
  serviceWatchdogMs?: number;
  /**
   * The worker count the image before an in-place upgrade ran (TTIN/TTOU,
   * `ctl scale`, autoscale's count): it stays, within autoscale's bounds.
   */
  desiredWorkers?: number;
}

const STOPPING: Reply = { ok: false, error: "the master is stopping" };

/** The master's state and decisions. `C` is the spawn context of a generation. */
export class MasterCore<C> {
  readonly #s: CoreState<C>;
  /** One handler per signal, as Gunicorn's `SIG_NAMES` → `handle_*`. */
  readonly #signals: Record<MasterSignal, (now: number, hasTerminal: boolean) => void>;

  constructor(settings: Settings, context: C, options: CoreOptions = {}) {
    const inherited = options.inherited;
    const number = inherited ? inherited.generation + 1 : 1;
    const current = { number, settings, context, bootFailures: 0, readyAnnounced: false };
    const s = this.#s = new CoreState(current, options.random ?? Math.random, options.now ?? 0);
    if (inherited) {
      // Workers of the image before an in-place upgrade: an older generation
      // that serves until the new one is ready, exactly like a reload.
      const old: GenerationRecord<C> = {
        number: inherited.generation,
        settings,
        context,
        bootFailures: 0,
        readyAnnounced: true,
      };
      s.generations.set(old.number, old);
      s.previous = old;
      s.upgrading = true; // until the new generation has replaced the old one
      s.served = inherited.workers.length > 0;
      beginRollout(s, "upgrade", number);
      for (const { pid, slot } of inherited.workers) {
        const serial = s.nextSerial++;
        s.workers.set(serial, {
          serial,
          slot,
          generation: old.number,
          pid,
          state: "ready",
          spawnedAt: options.now ?? 0,
          readyAt: options.now ?? 0,
          killSent: false,
          superseded: false,
          inherited: true,
        });
      }
      s.reapPollAt = (options.now ?? 0) + INHERITED_POLL_MS;
    }
    if (options.desiredWorkers !== undefined) {
      s.desired = saturation.manualCount(s, options.desiredWorkers, options.now ?? 0);
    }
    if (options.serviceWatchdogMs !== undefined) {
      // Due at once: the first ping goes out with the first step.
      const intervalMs = options.serviceWatchdogMs;
      s.servicePing = { intervalMs, lastAt: (options.now ?? 0) - intervalMs };
    }
    this.#signals = {
      SIGTERM: (now) => this.#stop(false, "SIGTERM", now),
      SIGINT: (now) => this.#stop(true, "SIGINT", now),
      SIGQUIT: (now) => this.#stop(true, "SIGQUIT", now),
      SIGUSR1: () => this.#reopenLogs(),
      // Zombies the runtime does not own (inherited workers, orphans under PID 1).
      SIGCHLD: () => s.emit({ type: "reap-children" }),
      SIGHUP: () => this.#running("SIGHUP") && reload.requestReload(s, "SIGHUP"),
      SIGUSR2: () => this.#running("SIGUSR2") && this.#requestUpgrade("SIGUSR2"),
      SIGTTIN: (now) =>
        this.#running("SIGTTIN") &&
        this.#scaleTo(saturation.manualCount(s, s.desired + 1, now), "SIGTTIN"),
      SIGTTOU: (now) => this.#running("SIGTTOU") && this.#scaleDown(now),
      SIGWINCH: (_now, hasTerminal) => this.#running("SIGWINCH") && this.#winch(hasTerminal),
    };
  }

  /** The first step: release the listeners no one needs, spawn the initial workers. */
  start(now: number): Effect<C>[] {
    const s = this.#s;
    releaseAtStartUp(s);
    s.log("info", "generation.starting", "starting {workers} worker(s) of {command}", {
      workers: s.desired,
      command: s.current.settings.commandName,
    });
    reconcile(s, now);
    return s.take();
  }

  /** Handles one event and returns what to do. */
  handle(event: Event<C>, now: number): Effect<C>[] {
    const s = this.#s;
    const desired = s.desired;
    switch (event.type) {
      case "signal":
        this.#signals[event.signal](now, event.hasTerminal ?? false);
        break;
      case "request":
        this.#answer(event.reply, this.#onRequest(event.action, event.source, now));
        break;
      case "scale":
        this.#answer(event.reply, this.#onScale(event.workers, now));
        break;
      case "probe":
        this.#answer(event.reply, { ok: true, message: "alive" });
        break;
      case "spawned":
        this.#onSpawned(event.serial, event.pid);
        break;
      case "spawn-failed":
        onSpawnFailed(s, event.serial, event.error, now);
        break;
      case "exited": {
        const gone = s.workers.get(event.serial);
        onExited(s, event.serial, event.code, event.signal, now, event.lastStderr);
        s.policy.forget(event.serial);
        if (gone) onWorkerGone(s, gone, now);
        break;
      }
      case "drain-sampled":
        onDrainSampled(s, event.queued, now);
        break;
      case "group-swept":
        onGroupSwept(s, event.pgid, event.members, now);
        break;
      case "notify":
        this.#onNotify(event.serial, event.fields, now);
        break;
      case "tick":
        break;
      case "stalled":
        onStalled(s, event.since, now);
        break;
      case "listeners-restored":
        onListenersRestored(s, event.addresses);
        break;
      case "config-loaded":
        reload.onConfigLoaded(s, event.settings, event.context, now);
        break;
      case "reload-vetted":
        reload.onReloadVetted(s, event.ok, event.context, now);
        break;
      case "config-failed":
        reload.refuse(s, event.error);
        break;
      case "upgrade-checked":
        this.#onUpgradeChecked(event.error);
        break;
      case "queue-sampled": { // autoscaling
        const decision = saturation.onQueueSampled(s, event.queued, now);
        if (decision) this.#scaleTo(decision.workers, decision.reason);
        break;
      }
      case "memory-sampled": // max_worker_memory
        saturation.onMemorySampled(s, event.samples, now);
        break;
    }
    saturation.requestDueSamples(s, now);
    reconcile(s, now);
    if (s.desired !== desired) s.emit({ type: "workers-changed", from: desired, to: s.desired });
    return s.take();
  }

  /** The earliest time at which something is due, or undefined when nothing is. */
  nextDeadline(): number | undefined {
    return nextDeadline(this.#s);
  }

  /** A read-only view of the state, for status and metrics (a copy). */
  snapshot(): CoreSnapshot {
    return this.#s.snapshot();
  }

  /**
   * The contexts whose resources (listeners) must stay open whatever the
   * workers do: the serving generation's, and a reload's being vetted.
   */
  contextsInUse(): C[] {
    const s = this.#s;
    return s.vetting ? [s.current.context, s.vetting.context] : [s.current.context];
  }

  /** The spawn context of the current generation. */
  get currentContext(): C {
    return this.#s.current.context;
  }

  /** Whether the master is stopping. */
  get stopping(): boolean {
    return !this.#s.running;
  }

  // ---- signals and requests: they change desired state; reconcile acts on it ----

  #answer(to: ReplyTo | undefined, reply: Reply): void {
    if (to) this.#s.emit({ type: "reply", to, reply });
  }

  /** False (and logged) when the master is stopping: signals that start things are ignored. */
  #running(source: string): boolean {
    if (this.#s.running) return true;
    this.#s.log("info", "signal.ignored", "{signal} ignored: the master is stopping", {
      signal: source,
    });
    return false;
  }

  #stop(quick: boolean, source: string, now: number): Reply {
    return beginStop(this.#s, quick, source, now);
  }

  #reopenLogs(): void {
    this.#s.emit({ type: "reopen-logs" });
    // Only to ready workers: one still booting (or still the exec shim) may
    // not handle USR1 yet, and its default action is to terminate. A booting
    // one gets it once it is ready, so no worker misses a log rotation.
    // Nor to a generation with worker_usr1 = "off" (e.g. Node, whose
    // USR1 opens an inspector whatever its mask).
    for (const w of this.#s.workers.values()) {
      if (this.#s.settingsOf(w).workerUsr1 === "off") continue;
      if (w.state === "ready") this.#s.emit({ type: "kill", serial: w.serial, signal: "SIGUSR1" });
      else if (w.state === "booting") w.usr1Pending = true;
    }
  }

  #scaleDown(now: number): void {
    const s = this.#s;
    const min = s.policy.bounds?.min ?? 1; // autoscale's workers_min
    if (s.desired <= min) {
      s.log(
        "info",
        "scale.refused",
        "SIGTTOU ignored: already at {count} worker(s), the minimum is {min}",
        { count: s.desired, min },
      );
    } else this.#scaleTo(saturation.manualCount(s, s.desired - 1, now), "SIGTTOU");
  }

  #winch(hasTerminal: boolean): void {
    if (hasTerminal) {
      this.#s.log(
        "debug",
        "signal.ignored",
        "SIGWINCH ignored: the master has a controlling terminal",
      );
      return;
    }
    this.#s.log(
      "info",
      "scale.stopped_all",
      "SIGWINCH: stopping all workers; the master stays (HUP or TTIN restarts them)",
    );
    this.#s.desired = 0;
  }

  #onRequest(action: RequestAction, source: string, now: number): Reply {
    if (action === "stop" || action === "quick-stop") {
      return this.#stop(action === "quick-stop", source, now);
    }
    if (!this.#s.running) {
      this.#s.log("info", "signal.ignored", "{source} ignored: the master is stopping", { source });
      return STOPPING;
    }
    return action === "reload"
      ? reload.requestReload(this.#s, source)
      : this.#requestUpgrade(source);
  }

  #onScale(workers: number, now: number): Reply {
    if (!this.#s.running) return STOPPING;
    const from = this.#s.desired;
    const count = saturation.manualCount(this.#s, workers, now); // within autoscale's bounds
    this.#scaleTo(count, "control request");
    return { ok: true, message: `workers ${from} -> ${count}${saturation.boundsNote(this.#s)}` };
  }

  #scaleTo(count: number, why: string): void {
    const s = this.#s;
    if (!s.running || count === s.desired) return;
    s.log("info", "scale.changed", "{why}: workers {from} -> {to}", {
      why,
      from: s.desired,
      to: count,
    });
    s.desired = count;
  }

  #requestUpgrade(source: string): Reply {
    const s = this.#s;
    const busy = s.upgrading
      ? "an upgrade is already in progress"
      : s.reloading || s.previous
      ? "a reload is in progress"
      : undefined;
    if (busy) {
      s.log("warning", "upgrade.refused", "{source} refused: {busy}", { source, busy });
      return { ok: false, error: busy };
    }
    s.upgrading = true;
    beginRollout(s, "upgrade");
    s.log(
      "info",
      "upgrade.checking",
      "{source}: checking the new master before upgrading in place",
      { source },
    );
    s.emit({ type: "check-upgrade" });
    return { ok: true, message: "upgrading in place (see the master's log for the outcome)" };
  }

  #onUpgradeChecked(error: string | undefined): void {
    const s = this.#s;
    if (error === undefined && s.running && !s.reloading) {
      s.log("info", "upgrade.started", "upgrading in place: re-executing the master (pid kept)");
      s.emit({ type: "exec-upgrade", generation: s.current.number });
      return; // if the exec fails, another upgrade-checked event with the error follows
    }
    s.upgrading = false;
    const why = error ?? "the master is stopping or reloading";
    s.log("error", "upgrade.refused", "upgrade refused, nothing changed: {error}", { error: why });
    endRollout(s, "refused", why);
  }

  #onSpawned(serial: number, pid: number): void {
    const w = this.#s.workers.get(serial);
    if (!w) return;
    w.pid = pid;
    this.#s.log(
      "info",
      "worker.spawned",
      "worker {worker.id} (pid {worker.pid}) started, generation {worker.generation}",
      { worker: workerRef(w) },
    );
  }

  #onNotify(serial: number, fields: Record<string, string>, now: number): void {
    const s = this.#s;
    const w = s.workers.get(serial);
    if (!w) return;
    if (fields.STATUS !== undefined) w.status = fields.STATUS;
    if (fields.WATCHDOG === "1") w.lastPing = now;
    if (fields.READY === "1" && w.state === "booting") s.markReady(w, now, "READY=1");
    if (fields.STOPPING === "1" && w.state !== "stopping") {
      // It is leaving on its own: stop counting it so its replacement starts
      // (at once, unless it leaves right after becoming ready: then backed off).
      if (s.running && endsEarly(w, now)) backOffEarlyEnd(s, w, now, "said STOPPING=1");
      w.state = "stopping";
      w.stopReason = "worker-stopping";
      w.killAt = now + s.settingsOf(w).gracefulTimeoutMs;
      s.log(
        "info",
        "worker.stopping",
        "worker {worker.id} (pid {worker.pid}) is stopping on its own",
        { worker: workerRef(w) },
      );
    }
  }
}
