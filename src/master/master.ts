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
import type { Logging } from "../logging/log.ts";
import { getLog } from "../logging/log.ts";
import { Pidfile } from "../pidfile/pidfile.ts";
import { parseBind } from "../config/bind.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import { HookRunner } from "../hooks/runner.ts";
import { Operations } from "./operations.ts";
import { NotifyHub } from "../notify/hub.ts";
import { type Listener, ListenerPool } from "../sockets/listeners.ts";
import { ChildRegistry } from "../spawn/children.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { MasterCore } from "./core.ts";
import { timerDelay } from "./deadlines.ts";
import type { Effect, Event, MasterSignal } from "./events.ts";
import { type GenerationContext, prepareGeneration, settingsOf } from "./generation.ts";
import { upgradeEnv, upgradeState } from "./handover.ts";
import { EventQueue } from "./queue.ts";
import { loadConfig, MasterSettings } from "./reload.ts";
import { WorkerProcesses } from "./workers.ts";
import { blockAllSignals } from "../sys/libc.ts";
import { ServiceManager } from "./systemd.ts";
import { type AdoptedState, checkUpgrade, execUpgrade } from "./upgrade.ts";

/** What the master is started with. */
export interface MasterOptions {
  config: Config;
  /** Reads and validates the config again (SIGHUP), with the same command-line overrides. */
  reloadConfig: () => Promise<Config>;
  logging: Logging;
  /** The master's environment without the variables that must not reach workers. */
  masterEnv: Record<string, string>;
  self: SelfInvocation;
  /** LISTEN_FDNAMES of sockets inherited from systemd, by fd. */
  inheritedNames?: Map<number, string>;
  version: string;
  /** The master's own arguments, for re-executing it (USR2). */
  args: string[];
  /** The master's full environment (with its own systemd variables), for USR2. */
  fullEnv: Record<string, string>;
  /** What the previous image handed over, when this one comes from an in-place upgrade. */
  upgrade?: AdoptedState;
}

const SIGNALS: MasterSignal[] = [
  "SIGCHLD",
  "SIGHUP",
  "SIGTERM",
  "SIGINT",
  "SIGQUIT",
  "SIGTTIN",
  "SIGTTOU",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
];

function hasControllingTerminal(): boolean {
  try {
    Deno.openSync("/dev/tty").close();
    return true;
  } catch {
    return false;
  }
}

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
  /** Contexts loaded by a reload whose event the core has not handled yet. */
  readonly #pendingContexts = new Set<GenerationContext>();
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
  #timer?: ReturnType<typeof setTimeout>;
  #timerAt?: number;
  #exitCode?: number;
  #signalHandlers = new Map<MasterSignal, () => void>();

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
  }

  async run(): Promise<number> {
    const { config, upgrade, version } = this.#options;
    const starting = upgrade ? undefined : this.#hooks.fire("on_starting");
    if (starting && !(await starting).ok) {
      throw new ArbiterError(ExitCode.Runtime, "the on_starting hook failed; not starting");
    }
    const context = await this.#startResources(config);
    if (upgrade?.state.notifyDir) {
      await Deno.remove(upgrade.state.notifyDir, { recursive: true }).catch(() => {});
    }
    // Sockets an upgrade handed over stay while the old workers may hold them.
    const inheritedWorkers = (upgrade?.state.workers.length ?? 0) > 0;
    this.#pool.release(inheritedWorkers ? this.#pool.list() : context.listeners);
    for (const warning of upgrade?.warnings ?? []) {
      this.#log.warn("upgrade: {warning}", { warning });
    }
    const started = upgrade
      ? "arbiter {version} master re-executed in place (pid {pid}); took over {count} worker(s)"
      : "arbiter {version} master started (pid {pid})";
    this.#log.info(started, { version, pid: Deno.pid, count: upgrade?.state.workers.length });
    this.#logListeners(context.listeners);
    this.#installSignals();
    const now = performance.now();
    this.#core = new MasterCore(settingsOf(config), context, {
      now,
      inherited: inheritedWorkers
        ? { generation: upgrade!.state.generation, workers: upgrade!.state.workers }
        : undefined,
    });
    this.#workers!.adopt(
      this.#core.snapshot().workers.map((w) => ({ ...w, pid: w.pid! })),
      { ...context, listeners: this.#pool.list() },
    );
    this.#systemd!.startWatchdog(() => this.#queue.push({ type: "tick" }));
    this.#settings!.watch();
    await this.#apply(this.#core.start(now));
    this.#armTimer();
    while (this.#exitCode === undefined) {
      const event = await this.#queue.next();
      this.#beforeHandling(event);
      await this.#apply(this.#core.handle(event, performance.now()));
      this.#armTimer();
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
          this.#log.debug("notify from worker serial {serial} ignored: {why}", { serial, why }),
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
    if (event.type === "config-loaded") this.#pendingContexts.delete(event.context);
    if (event.type === "signal" && event.signal === "SIGCHLD") this.#workers!.reapForeign();
    if (event.type === "spawn-failed") this.#workers!.forget(event.serial);
    if (event.type === "exited") {
      const worker = this.#workers!.forget(event.serial);
      if (worker) {
        this.#hooks.fire("post_exit", {
          workerId: worker.slot,
          workerPid: worker.pid,
          generation: worker.generation,
          exitCode: event.signal ? undefined : event.code,
          exitSignal: event.signal ?? undefined,
        });
      }
    }
  }

  #startOperations(): Promise<Operations<GenerationContext>> {
    return Operations.start(this.#options.config, {
      snapshot: () => this.#core?.snapshot(),
      push: (event) => this.#queue.push(event),
      loopEnded: () => this.#exitCode !== undefined,
      version: this.#options.version,
      startedAt: this.#startedAt,
    });
  }

  #installSignals(): void {
    for (const signal of SIGNALS) {
      const handler = () =>
        this.#queue.push({
          type: "signal",
          signal,
          hasTerminal: signal === "SIGWINCH" ? hasControllingTerminal() : undefined,
        });
      Deno.addSignalListener(signal, handler);
      this.#signalHandlers.set(signal, handler);
    }
    // An image started by an in-place upgrade inherits a fully blocked mask
    // (see execUpgrade); now that every signal has a listener, let them in.
    blockAllSignals(false);
  }

  #armTimer(): void {
    const deadline = this.#exitCode === undefined ? this.#core?.nextDeadline() : undefined;
    if (deadline === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = deadline;
    if (deadline === undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.#queue.push({ type: "tick" });
    }, timerDelay(deadline, performance.now()));
  }

  async #apply(effects: MasterEffect[]): Promise<void> {
    this.#systemd!.pingIfDue(performance.now());
    for (const effect of effects) await this.#carryOut(effect);
  }

  async #carryOut(effect: MasterEffect): Promise<void> {
    switch (effect.type) {
      case "spawn":
        this.#hooks.fire("pre_spawn", { workerId: effect.slot, generation: effect.generation });
        return await this.#workers!.spawn(
          effect.serial,
          effect.slot,
          effect.generation,
          effect.context,
        );
      case "kill":
        this.#workers!.kill(effect.serial, effect.signal);
        if (effect.reason === "boot-timeout" || effect.reason === "watchdog-timeout") {
          const w = this.#workers!.get(effect.serial);
          this.#hooks.fire("worker_timeout", {
            event: effect.reason === "boot-timeout" ? "boot_timeout" : "worker_timeout",
            workerId: w?.slot,
            workerPid: w?.pid,
            generation: w?.generation,
          });
        }
        return;
      case "log":
        return this.#log[effect.level](effect.message, effect.props ?? {});
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
        return this.#systemd!.send("READY=1", `STATUS=${this.#statusLine()}`);
      case "check-upgrade":
        return this.#checkUpgrade();
      case "exec-upgrade":
        return await this.#execUpgrade(effect.generation);
      case "reopen-logs":
        return this.#options.logging.reopen();
      case "generation-ready":
        this.#systemd!.send("READY=1", `STATUS=${this.#statusLine()}`);
        this.#hooks.fire("when_ready", {
          generation: effect.generation,
          newWorkers: this.#core!.snapshot().desiredWorkers,
        });
        return;
      case "retire-generation":
        return this.#releaseListeners();
      case "exit":
        return this.#exit(effect.code);
    }
  }

  #statusLine(): string {
    const snapshot = this.#core!.snapshot();
    const ready = snapshot.workers.filter((w) => w.state === "ready").length;
    return `${ready} of ${snapshot.desiredWorkers} worker(s) ready, generation ${snapshot.generation}`;
  }

  #loadConfig(): void {
    loadConfig({
      reloadConfig: this.#options.reloadConfig,
      masterEnv: this.#options.masterEnv,
      pool: this.#pool,
      hooks: this.#hooks,
      push: (event) => this.#queue.push(event),
      desiredWorkers: () => this.#core!.snapshot().desiredWorkers,
      prepared: (context) => {
        this.#pendingContexts.add(context);
        const served = this.#workers!.listenersInUse();
        this.#logListeners(context.listeners.filter((l) => !served.has(l)));
      },
      releaseListeners: () => this.#releaseListeners(),
    });
  }

  #checkUpgrade(): void {
    const { self, args, fullEnv } = this.#options;
    checkUpgrade(self, args, fullEnv, this.#registry)
      .then((error) => this.#queue.push({ type: "upgrade-checked", error }))
      .catch((error) => this.#queue.push({ type: "upgrade-checked", error: String(error) }));
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

  #logListeners(listeners: Listener[]): void {
    for (const l of listeners) {
      this.#log.info("listening at {address} (fd {fd})", { address: l.address, fd: l.fd });
    }
  }

  /** Closes listeners that neither the current generation nor any live worker uses. */
  #releaseListeners(): void {
    const keep = new Set<Listener>(this.#core?.currentContext.listeners ?? []);
    for (const ctx of this.#pendingContexts) for (const l of ctx.listeners) keep.add(l);
    for (const l of this.#workers?.listenersInUse() ?? []) keep.add(l);
    for (const l of this.#pool.release(keep)) {
      this.#log.info("closed listener {address}: no worker uses it any more", {
        address: l.address,
      });
    }
  }

  #exit(code: number): void {
    this.#systemd?.close();
    for (const [signal, handler] of this.#signalHandlers) {
      Deno.removeSignalListener(signal, handler);
    }
    this.#signalHandlers.clear();
    this.#pool.closeAll();
    this.#settings?.removePidfile();
    this.#exitCode = code;
    clearTimeout(this.#timer);
  }
}
