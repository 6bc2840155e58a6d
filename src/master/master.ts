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
import { MasterCore } from "../core/core.ts";
import type { Effect, Event } from "../core/events.ts";
import { type GenerationContext, prepareGeneration, settingsOf } from "./generation.ts";
import { checkBeforeUpgrade, receiveHandover, upgradeEnv, upgradeState } from "./handover.ts";
import { EventQueue } from "./queue.ts";
import { loadConfig, MasterSettings } from "./reload.ts";
import { WorkerProcesses } from "./workers.ts";
import { ListenerKeeper } from "./listener_keeper.ts";
import { SignalListeners } from "./signals.ts";
import { DeadlineTimer } from "./timer.ts";
import { ServiceManager } from "./systemd.ts";
import { execUpgrade } from "./upgrade.ts";
import type { MasterOptions } from "./options.ts";
import { Sampling } from "./sampling.ts";
import { postExitContext, timeoutContext } from "./worker_hooks.ts";

export type { MasterOptions } from "./options.ts";

type MasterEvent = Event<GenerationContext>;
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
  readonly #timer = new DeadlineTimer(() => this.#queue.push({ type: "tick" }));
  readonly #signals = new SignalListeners();
  readonly #listeners: ListenerKeeper;
  readonly #sampling = new Sampling<GenerationContext>(
    () => this.#pool.list(),
    (e) => this.#queue.push(e),
  );
  #exitCode?: number;

  constructor(options: MasterOptions) {
    this.#options = options;
    this.#startedAt = options.upgrade?.state.startedAt ?? Date.now();
    const { config, masterEnv, self } = options;
    this.#hooks = new HookRunner({
      config,
      masterEnv,
      self,
      log: this.#log,
      registry: this.#registry,
    });
    this.#pool = new ListenerPool({
      backlog: config.backlog,
      umask: config.umask,
      inheritedNames: options.inheritedNames,
    });
    this.#listeners = new ListenerKeeper(this.#pool, this.#log, {
      inUse: () => this.#workers?.listenersInUse() ?? new Set(),
      current: () => this.#core?.currentContext,
    });
  }

  async run(): Promise<number> {
    const { config, upgrade, version } = this.#options;
    const starting = upgrade ? undefined : this.#hooks.fire("on_starting");
    if (starting && !(await starting).ok) {
      throw new ArbiterError(ExitCode.Runtime, "the on_starting hook failed; not starting");
    }
    const context = await this.#startResources(config);
    const inherited = await receiveHandover(upgrade, this.#pool, context.listeners, this.#log);
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
    this.#signals.install((event) => this.#queue.push(event));
    const now = performance.now();
    this.#core = new MasterCore(settingsOf(config), context, { now, inherited });
    this.#workers!.adopt(
      this.#core.snapshot().workers.map((w) => ({ ...w, pid: w.pid! })),
      { ...context, listeners: this.#pool.list() },
    );
    this.#systemd!.startWatchdog(() => this.#queue.push({ type: "tick" }));
    this.#settings!.watch();
    await this.#apply(this.#core.start(now));
    this.#timer.arm(this.#core.nextDeadline());
    while (this.#exitCode === undefined) {
      const event = await this.#queue.next();
      this.#beforeHandling(event);
      await this.#apply(this.#core.handle(event, performance.now()));
      this.#timer.arm(this.#exitCode === undefined ? this.#core.nextDeadline() : undefined);
    }
    this.#settings!.stopWatching();
    this.#workers?.close();
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
      this.#systemd = await ServiceManager.fromEnv(this.#options.fullEnv, this.#log);
      this.#hub = await NotifyHub.create(
        (serial, fields) => this.#queue.push({ type: "notify", serial, fields }),
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
        registry: this.#registry,
        self: this.#options.self,
        shimEnv: this.#options.masterEnv,
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

  /** Executor-side bookkeeping an event needs before the core sees it. */
  #beforeHandling(event: MasterEvent): void {
    if (event.type === "config-loaded") this.#listeners.handled(event.context);
    if (event.type === "signal" && event.signal === "SIGCHLD") this.#workers!.reapForeign();
    if (event.type === "spawn-failed") this.#workers!.forget(event.serial);
    if (event.type === "exited") {
      const worker = this.#workers!.forget(event.serial);
      if (worker) this.#hooks.fire("post_exit", postExitContext(worker, event.code, event.signal));
    }
  }

  #startOperations(): Promise<Operations<GenerationContext>> {
    return Operations.start(this.#options.config, {
      snapshot: () => this.#core?.snapshot(),
      push: (event) => this.#queue.push(event),
      loopEnded: () => this.#exitCode !== undefined,
      version: this.#options.version,
      startedAt: this.#startedAt,
      notifyDropped: () => this.#hub?.droppedMessages ?? 0,
      saturation: (snapshot, now) =>
        this.#sampling.view(snapshot, this.#core!.currentContext.config, now),
    });
  }

  async #apply(effects: MasterEffect[]): Promise<void> {
    this.#systemd!.pingIfDue(performance.now());
    for (const effect of effects) await this.#carryOut(effect);
  }

  async #carryOut(effect: MasterEffect): Promise<void> {
    switch (effect.type) {
      case "spawn":
        this.#hooks.fire("pre_spawn", { workerId: effect.slot, generation: effect.generation });
        return await this.#workers!.spawn(effect);
      case "kill": {
        const timeout = timeoutContext(effect.reason, this.#workers!.get(effect.serial));
        this.#workers!.kill(effect.serial, effect.signal);
        if (timeout) this.#hooks.fire("worker_timeout", timeout);
        return;
      }
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
      case "adopt-config":
        return await this.#settings!.adopt(effect.context.config);
      case "stopping":
        return await this.#systemd!.sendNow("STOPPING=1");
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
    }
  }

  #loadConfig(): void {
    loadConfig({
      reloadConfig: this.#options.reloadConfig,
      masterEnv: this.#options.masterEnv,
      pool: this.#pool,
      hooks: this.#hooks,
      push: (event) => this.#queue.push(event),
      desiredWorkers: () => this.#core!.snapshot().desiredWorkers,
      prepared: (context) => this.#listeners.prepared(context),
      releaseListeners: () => this.#listeners.release(),
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
    const error = execUpgrade(self, args, upgradeEnv(fullEnv, inheritedNames), state);
    this.#ops = await this.#startOperations().catch(() => undefined);
    this.#settings!.watch();
    this.#queue.push({ type: "upgrade-checked", error });
  }

  #exit(code: number): void {
    this.#systemd?.close();
    this.#signals.remove();
    this.#pool.closeAll();
    this.#settings?.removePidfile();
    this.#exitCode = code;
    this.#timer.arm(undefined);
  }
}
