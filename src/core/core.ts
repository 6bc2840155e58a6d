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
 * Where the rest lives: the state and shared steps in state.ts, requests
 * and their replies in requests.ts and operator.ts, the deadline table (every timer the master arms) in deadlines.ts, exit
 * judgement in exits.ts, autoscaling and memory recycling in saturation.ts.
 *
 * @module
 */

import { type CoreSnapshot, CoreState, type GenerationRecord, workerRef } from "./state.ts";
import { INHERITED_POLL_MS, nextDeadline } from "./deadlines.ts";
import { releaseAtStartUp } from "./start_up.ts";
import type { Effect, Event, MasterSignal, Reply, ReplyTo, Settings } from "./events.ts";
import { onExited, onSpawnFailed } from "./exits.ts";
import { reconcile } from "./reconcile.ts";
import * as reload from "./reload.ts";
import * as saturation from "./saturation.ts";
import { beginStop, onDrainSampled, onGroupSwept, onWorkerGone } from "./stop.ts";
import { backOffEarlyEnd, endsEarly } from "./restarts.ts";
import { beginRollout } from "./rollout.ts";
import {
  onRequest,
  onScale,
  onUpgradeChecked,
  requestUpgrade,
  running,
  scaleDown,
  scaleTo,
  scaleUp,
  winch,
} from "./requests.ts";
import { restartSlot, signalWorkers, unknownWorkerId } from "./operator.ts";
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
      SIGTERM: (now) => beginStop(s, false, "SIGTERM", now),
      SIGINT: (now) => beginStop(s, true, "SIGINT", now),
      SIGQUIT: (now) => beginStop(s, true, "SIGQUIT", now),
      SIGUSR1: () => this.#reopenLogs(),
      // Zombies the runtime does not own (inherited workers, orphans under PID 1).
      SIGCHLD: () => s.emit({ type: "reap-children" }),
      SIGHUP: () => running(s, "SIGHUP") && reload.requestReload(s, "SIGHUP"),
      SIGUSR2: () => running(s, "SIGUSR2") && requestUpgrade(s, "SIGUSR2"),
      SIGTTIN: (now) => scaleUp(s, now),
      SIGTTOU: (now) => scaleDown(s, now),
      SIGWINCH: (_now, hasTerminal) => winch(s, hasTerminal),
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
        this.#answer(event.reply, onRequest(s, event.action, event.source, now));
        break;
      case "scale":
        this.#answer(event.reply, onScale(s, event.workers, event.relative ?? false, now));
        break;
      case "restart":
        this.#answer(event.reply, restartSlot(s, event.slot));
        break;
      case "signal-workers":
        this.#answer(event.reply, signalWorkers(s, event.signal, event.slot));
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
        onUpgradeChecked(s, event.error);
        break;
      case "queue-sampled": { // autoscaling
        const decision = saturation.onQueueSampled(s, event.queued, now);
        if (decision) scaleTo(s, decision.workers, decision.reason);
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

  /** Why worker id `id` names no worker, or undefined when it does (`ctl logs ID`). */
  unknownWorker(id: number): string | undefined {
    return unknownWorkerId(this.#s, id);
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

  // ---- requests (requests.ts, operator.ts) change desired state; reconcile acts on it ----

  #answer(to: ReplyTo | undefined, reply: Reply): void {
    if (to) this.#s.emit({ type: "reply", to, reply });
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
