/**
 * The master's run loop and the executor of the core's effects. It decides
 * nothing: every decision comes from the core (core.ts) as an effect, and
 * this file only carries it out. It owns the processes, the listener pool,
 * the deadline timer and the signal listeners; reload, upgrade hand-over and
 * systemd live in reload.ts, handover.ts and systemd.ts.
 *
 * Invariants:
 * - Every input (signal, child exit, spawn result, timer, reload result,
 *   control request) is pushed onto one {@link EventQueue}; the loop takes
 *   one event at a time, asks the core what to do, and carries that out
 *   before the next. Callbacks never touch state; they only push events.
 * - At most one timer is armed: for the core's next deadline, clamped to
 *   what `setTimeout` can hold (it re-evaluates when it fires).
 * - A worker is signalled only through the `Deno.ChildProcess` that started it.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { Config } from "../config/types.ts";
import { getLog } from "../logging/log.ts";
import { Pidfile } from "../pidfile/pidfile.ts";
import { parseBind } from "../config/bind.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import { HookRunner } from "../hooks/runner.ts";
import { Operations } from "./operations.ts";
import { NotifyHub } from "../notify/hub.ts";
import { ListenerPool } from "../sockets/listeners.ts";
import { ChildRegistry } from "../spawn/children.ts";
import { MasterCore, STALL_MS } from "../core/core.ts";
import type { Effect, Event } from "../core/events.ts";
import { type GenerationContext, prepareGeneration, settingsOf } from "./generation.ts";
import { checkBeforeUpgrade, receiveHandover, upgradeEnv, upgradeState } from "./handover.ts";
import { EventQueue } from "./queue.ts";
import { loadConfig, MasterSettings, vetReload } from "./reload.ts";
import { WorkerProcesses } from "./workers.ts";
import { ListenerKeeper } from "./listener_keeper.ts";
import { DeadlineTimer } from "./timer.ts";
import { denoOs, type Os } from "./os.ts";
import { sampleSelf } from "../observe/self.ts";
import { ServiceManager } from "./systemd.ts";
import { execUpgrade } from "./upgrade.ts";
import type { MasterOptions } from "./options.ts";
import { Sampling } from "./sampling.ts";
import { postExitContext, timeoutContext } from "./worker_hooks.ts";

export type { MasterOptions } from "./options.ts";

type MasterEvent = Event<GenerationContext>;

/** How long an upgrade's exec waits for the log lines still queued (a stalled reader loses them). */
const EXEC_FLUSH_MS = 500;
type MasterEffect = Effect<GenerationContext>;

/**
 * Runs a master until it stops; resolves with its exit code.
 * @throws {ArbiterError} when start-up fails (pidfile, bind, command); nothing is left behind
 */
export async function runMaster(options: MasterOptions): Promise<number> {
  return await new Master(options).run();
}

class Master {
  readonly #options: MasterOptions;
  readonly #queue = new EventQueue<MasterEvent>();
  readonly #log = getLog();
  readonly #pool: ListenerPool;
  readonly #registry = new ChildRegistry();
  readonly #hooks: HookRunner;
  #systemd?: ServiceManager;
  #hub?: NotifyHub;
  #workers?: WorkerProcesses;
  #settings?: MasterSettings;
  #core?: MasterCore<GenerationContext>;
  #ops?: Operations<GenerationContext>;
  #startedAt: number;
  readonly #os: Os;
  readonly #timer: DeadlineTimer;
  readonly #listeners: ListenerKeeper;
  readonly #sampling: Sampling<GenerationContext>;
  #exitCode?: number;
  /**
   * When the loop last ran on time (the clock's time): the end of its last
   * event, or that event's start when handling it took {@link STALL_MS} or
   * more (the master was paused or blocked part-way through it).
   */
  #lastRan = 0;
  /** The last `collect-garbage`, for the log line of the `trim-heap` that follows it. */
  #collection?: { rssBefore?: number; tookMs: number; collected: boolean };
  /** Notify messages read by {@link NotifyHub.drainPending}, handled before the event at hand. */
  #drained?: MasterEvent[];

  constructor(options: MasterOptions) {
    this.#options = options;
    this.#os = options.os ?? denoOs(this.#registry);
    this.#timer = new DeadlineTimer(() => this.#queue.push({ type: "tick" }), this.#os);
    this.#startedAt = options.upgrade?.state.startedAt ?? Date.now();
    const { config, masterEnv, self } = options;
    this.#hooks = new HookRunner({
      config,
      masterEnv,
      self,
      log: this.#log,
      registry: this.#registry,
    });
    const { sockets } = this.#os;
    this.#pool = new ListenerPool({
      backlog: config.backlog,
      umask: config.umask,
      inheritedNames: options.inheritedNames,
    }, sockets);
    this.#listeners = new ListenerKeeper(this.#pool, this.#log, {
      inUse: () => this.#workers?.listenersInUse() ?? new Set(),
      held: () => this.#core?.contextsInUse() ?? [],
    }, sockets);
    this.#sampling = new Sampling(
      () => this.#pool.list(),
      (e) => this.#queue.push(e),
      sockets.queues,
    );
  }

  async run(): Promise<number> {
    const { config, upgrade, version } = this.#options;
    const starting = upgrade ? undefined : this.#hooks.fire("on_starting");
    if (starting && !(await starting).ok) {
      throw new ArbiterError(ExitCode.Runtime, "the on_starting hook failed; not starting");
    }
    const context = await this.#startResources(config);
    const inherited = receiveHandover(upgrade, this.#log);
    const started = upgrade
      ? "arbiter {version} master re-executed in place (pid {pid}); took over {count} worker(s)"
      : "arbiter {version} master started (pid {pid})";
    this.#log.info(started, {
      event: upgrade ? "upgrade.done" : "master.started",
      version,
      pid: Deno.pid,
      count: inherited?.workers.length ?? 0,
    });
    this.#listeners.logListening(context.listeners);
    this.#os.signals.install((event) => this.#queue.push(event));
    const now = this.#os.now();
    this.#core = new MasterCore(settingsOf(config), context, {
      now,
      inherited,
      serviceWatchdogMs: this.#systemd!.watchdogIntervalMs,
      desiredWorkers: upgrade?.state.desiredWorkers,
    });
    this.#workers!.adopt(
      this.#core.snapshot().workers.map((w) => ({ ...w, pid: w.pid! })),
      { ...context, listeners: this.#pool.list() },
    );
    this.#settings!.watch();
    await this.#apply(this.#core.start(now));
    this.#timer.arm(this.#core.nextDeadline());
    this.#lastRan = this.#os.now();
    while (this.#exitCode === undefined) {
      const event = await this.#queue.next();
      const began = this.#os.now();
      if (event.type === "exited" || event.type === "tick") await this.#restoreListeners();
      for (const e of this.#catchUp(event)) {
        this.#beforeHandling(e);
        await this.#apply(this.#core.handle(e, this.#os.now()));
      }
      this.#timer.arm(this.#exitCode === undefined ? this.#core.nextDeadline() : undefined);
      const ended = this.#os.now();
      // A pause that hit part-way through this event began, at the latest, when the event did.
      this.#lastRan = ended - began >= STALL_MS ? began : ended;
    }
    this.#settings!.stopWatching();
    await this.#ops?.close();
    await this.#hub?.closeAll();
    await this.#hooks.idle(); // post_exit of the last workers first: on_exit is the last word
    this.#hooks.fire("on_exit", { exitCode: this.#exitCode });
    await this.#hooks.idle();
    return this.#exitCode;
  }

  /** Pidfile, listeners, notify hub, servers: all or nothing. */
  async #startResources(config: Config): Promise<GenerationContext> {
    let pidfile: Pidfile | undefined;
    try {
      if (config.pidfile) pidfile = Pidfile.claim(config.pidfile);
      for (const { fd, text } of this.#options.upgrade?.state.listeners ?? []) {
        this.#pool.adopt(fd, parseBind(text, "/"));
      }
      const context = await prepareGeneration(config, this.#pool, this.#options.masterEnv);
      const runtimeDir = this.#options.runtimeDir;
      this.#systemd = await ServiceManager.fromEnv(this.#options.fullEnv, runtimeDir, this.#log);
      this.#hub = await NotifyHub.create(
        runtimeDir,
        (serial, fields) => this.#notify(serial, fields),
        (serial, why) =>
          this.#log.debug("notify from worker serial {serial} ignored: {why}", {
            event: "notify.ignored",
            serial,
            why,
          }),
      );
      this.#workers = new WorkerProcesses({
        push: (event) => this.#queue.push(event),
        hub: this.#hub,
        os: this.#os,
        self: this.#options.self,
        shimEnv: this.#options.masterEnv,
        stdout: this.#options.logging.stdout,
        stderr: this.#options.logging.stderr,
      });
      this.#ops = await this.#startOperations();
      const push = (event: MasterEvent) => this.#queue.push(event);
      const deps = { logging: this.#options.logging, hooks: this.#hooks, log: this.#log, push };
      this.#settings = new MasterSettings(config, pidfile, deps);
      return context;
    } catch (error) {
      await this.#hub?.closeAll();
      this.#pool.closeAll();
      pidfile?.remove();
      this.#systemd?.close();
      throw error;
    }
  }

  /**
   * Deadlines after a stall: before a tick, or any event that comes when the
   * timer is long overdue (the master was paused, throttled or blocked), the
   * messages waiting in the notify sockets are read, and after a stall the
   * core hears of it first — so it re-arms instead of killing healthy workers.
   */
  #catchUp(event: MasterEvent): MasterEvent[] {
    const now = this.#os.now();
    const stalled = this.#timer.lateBy(now) >= STALL_MS;
    if (event.type !== "tick" && !stalled) return [event];
    const drained: MasterEvent[] = this.#drained = [];
    try {
      this.#hub?.drainPending();
    } finally {
      this.#drained = undefined;
    }
    const first: MasterEvent[] = stalled ? [{ type: "stalled", since: this.#lastRan }] : [];
    return [...first, ...drained, event];
  }

  /**
   * A listener a worker shut down is noticed when workers die or a deadline
   * fires (both follow, as workers crash-loop on it): a fresh socket
   * replaces it, and the core replaces the workers that hold the dead one.
   */
  async #restoreListeners(): Promise<void> {
    const contexts = [this.#core?.currentContext, ...this.#listeners.pendingContexts()];
    const addresses = await this.#listeners.restoreDead(contexts);
    if (addresses.length === 0) return;
    await this.#apply(
      this.#core!.handle({ type: "listeners-restored", addresses }, this.#os.now()),
    );
  }

  /** A notify message: handled now while catching up, else queued. */
  #notify(serial: number, fields: Record<string, string>): void {
    const event: MasterEvent = { type: "notify", serial, fields };
    if (this.#drained) this.#drained.push(event);
    else this.#queue.push(event);
  }

  /** Executor-side bookkeeping an event needs before the core sees it. */
  #beforeHandling(event: MasterEvent): void {
    if (event.type === "config-loaded") this.#listeners.handled(event.context);
  }

  #startOperations(): Promise<Operations<GenerationContext>> {
    return Operations.start(this.#options.config, {
      snapshot: () => this.#core?.snapshot(),
      push: (event) => this.#queue.push(event),
      loopEnded: () => this.#exitCode !== undefined,
      version: this.#options.version,
      startedAt: this.#startedAt,
      notifyDropped: () => this.#hub?.droppedMessages ?? 0,
      logLinesDropped: () => this.#options.logging.droppedLines(),
      listenersRestored: () => this.#listeners.restores,
      logs: (query) => {
        const report = this.#workers!.logs(query);
        // An id with lines kept (a slot scaled away) still shows them; one that never was is refused.
        if (query.id === undefined || report.lines.length > 0 || query.after !== undefined) {
          return report;
        }
        return { ...report, refused: this.#core?.unknownWorker(query.id) };
      },
      saturation: (snapshot, now) =>
        this.#sampling.view(snapshot, this.#core!.currentContext.config, now),
    });
  }

  async #apply(effects: MasterEffect[]): Promise<void> {
    for (const effect of effects) await this.#carryOut(effect);
  }

  async #carryOut(effect: MasterEffect): Promise<void> {
    switch (effect.type) {
      case "spawn":
        this.#hooks.fire("pre_spawn", { workerId: effect.slot, generation: effect.generation });
        return await this.#workers!.spawn(effect);
      case "kill":
      case "signal-worker": // ctl signal
        return this.#workers!.kill(effect.serial, effect.signal, effect.group);
      case "worker-timed-out":
        this.#hooks.fire("worker_timeout", timeoutContext(effect.hook, effect.worker));
        return;
      case "worker-gone":
        this.#workers!.forget(effect.serial);
        if (effect.exited) this.#hooks.fire("post_exit", postExitContext(effect.exited));
        return;
      case "reap-children":
        return this.#workers!.reapForeign();
      case "ping-service-manager":
        return this.#systemd!.send("WATCHDOG=1");
      case "log":
        return this.#log[effect.level](effect.message, { event: effect.event, ...effect.props });
      case "reply":
        return effect.to(effect.reply);
      case "workers-changed":
        this.#hooks.fire("nworkers_changed", { oldWorkers: effect.from, newWorkers: effect.to });
        return;
      case "load-config":
        this.#systemd!.reloading();
        return this.#loadConfig();
      case "vet-reload":
        return vetReload(this.#hooks, (e) => this.#queue.push(e), effect);
      case "release-listeners":
        return this.#listeners.release();
      case "adopt-config":
        this.#listeners.adoptConfig(effect.context);
        return await this.#settings!.adopt(effect.context.config);
      case "stopping":
        return await this.#systemd!.sendNow("STOPPING=1");
      case "rollout-ended": // the outcome is in the snapshot, for ctl reload --wait
        return;
      case "collect-garbage": {
        const rssBefore = sampleSelf()?.residentBytes;
        const started = performance.now();
        const collected = this.#os.collectGarbage();
        this.#collection = {
          rssBefore,
          tookMs: Math.round((performance.now() - started) * 10) / 10,
          collected,
        };
        return;
      }
      case "trim-heap": {
        const trimmed = this.#os.trimHeap();
        const { rssBefore, tookMs, collected } = this.#collection ?? { collected: false };
        this.#collection = undefined;
        const mb = (bytes?: number) => bytes === undefined ? "?" : (bytes / 2 ** 20).toFixed(1);
        this.#log.debug(
          "workers quiet: memory given back (collection {tookMs} ms), RSS {before} MB to {after} MB",
          {
            event: "master.memory_released",
            before: mb(rssBefore),
            after: mb(sampleSelf()?.residentBytes),
            tookMs,
            collected,
            trimmed,
          },
        );
        return;
      }
      case "reload-done":
        return this.#systemd!.ready(this.#core!.snapshot());
      case "check-upgrade":
        return checkBeforeUpgrade(this.#options, this.#registry, (e) => this.#queue.push(e));
      case "exec-upgrade":
        return await this.#execUpgrade(effect.generation);
      case "reopen-logs":
        return this.#options.logging.reopen();
      case "generation-ready":
        this.#systemd!.ready(this.#core!.snapshot());
        this.#hooks.fire("when_ready", {
          generation: effect.generation,
          newWorkers: this.#core!.snapshot().desiredWorkers,
        });
        return;
      case "retire-generation":
        return this.#listeners.release();
      case "exit":
        return this.#exit(effect.code);
      case "sample-queue":
      case "sample-memory":
        return this.#sampling.carryOut(effect);
      case "close-handshakes":
        return this.#listeners.closeHandshakes();
      case "sample-drain":
        this.#queue.push({ type: "drain-sampled", queued: this.#listeners.queued() });
        return;
      case "sweep-group": {
        const { members, refused } = this.#workers!.sweepGroup(effect.pgid, effect.signal);
        if (refused) {
          this.#log.warning("process group {pgid} left alone: {refused}", {
            event: "group.refused",
            pgid: effect.pgid,
            refused,
          });
        }
        this.#queue.push({ type: "group-swept", pgid: effect.pgid, members });
        return;
      }
    }
  }

  #loadConfig(): void {
    loadConfig({
      reloadConfig: () => this.#options.reloadConfig((child) => this.#registry.track(child)),
      masterEnv: this.#options.masterEnv,
      pool: this.#pool,
      push: (event) => this.#queue.push(event),
      prepared: (context) => this.#listeners.prepared(context),
    });
  }

  async #execUpgrade(generation: number): Promise<void> {
    const { self, args, fullEnv, inheritedNames } = this.#options;
    const state = upgradeState({
      snapshot: this.#core!.snapshot(),
      generation,
      listeners: this.#pool.list(),
      startedAt: this.#startedAt,
      notifyDir: this.#hub?.dir,
    });
    // What Deno opened closes at exec anyway (FD_CLOEXEC); these also remove files.
    this.#settings!.stopWatching();
    await this.#ops?.close();
    await this.#options.logging.flush(EXEC_FLUSH_MS); // the old image's last lines
    const error = execUpgrade(self, args, upgradeEnv(fullEnv, inheritedNames), state);
    this.#ops = await this.#startOperations().catch(() => undefined);
    this.#settings!.watch();
    this.#queue.push({ type: "upgrade-checked", error });
  }

  #exit(code: number): void {
    this.#systemd?.close();
    this.#os.signals.remove();
    this.#pool.closeAll();
    this.#settings?.removePidfile();
    this.#exitCode = code;
    this.#timer.arm(undefined);
  }
}
