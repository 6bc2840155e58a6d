/**
 * The master's run loop and the executor of the core's effects. This is the
 * only place that owns processes, the listener pool, the pidfile, the
 * deadline timer and the signal listeners.
 *
 * Invariants:
 * - Every input (signal, child exit, spawn result, timer, reload result) is
 *   pushed onto one {@link EventQueue}; the loop takes one event at a time,
 *   asks the core what to do, and carries that out before the next. Callbacks
 *   never touch state; they only push events.
 * - At most one timer is armed: for the core's next deadline, if it has one.
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
import { reloadPathsOf, type Watcher, watchForChanges } from "../reload/watch.ts";
import { Operations } from "./operations.ts";
import { NotifyHub } from "../notify/hub.ts";
import { type Listener, ListenerPool } from "../sockets/listeners.ts";
import { ChildRegistry } from "../spawn/children.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { MasterCore } from "./core.ts";
import type { Effect, Event, MasterSignal } from "./events.ts";
import { type GenerationContext, prepareGeneration, settingsOf } from "./generation.ts";
import { EventQueue } from "./queue.ts";
import { WorkerProcesses } from "./workers.ts";
import { blockAllSignals } from "../sys/libc.ts";
import { addSignalListener, removeSignalListener } from "./usr1.ts"; // usr1: no inspector on USR1
import { SystemdNotifier } from "./systemd.ts";
import { type AdoptedState, checkUpgrade, execUpgrade, type UpgradeState } from "./upgrade.ts";

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
  const master = new Master(options);
  return await master.run();
}

class Master {
  readonly #options: MasterOptions;
  readonly #queue = new EventQueue<MasterEvent>();
  /** Contexts loaded by a reload whose event the core has not handled yet. */
  readonly #pendingContexts = new Set<GenerationContext>();
  readonly #log = getLog();
  #pool: ListenerPool;
  readonly #registry = new ChildRegistry();
  #systemd?: SystemdNotifier;
  #hub?: NotifyHub;
  #workers?: WorkerProcesses;
  #systemdWatchdog?: ReturnType<typeof setInterval>;
  #startedAt = Date.now();
  #pidfile?: Pidfile;
  #core?: MasterCore<GenerationContext>;
  #timer?: ReturnType<typeof setTimeout>;
  #timerAt?: number;
  #exitCode?: number;
  #signalHandlers = new Map<MasterSignal, () => void>();
  readonly #hooks: HookRunner;
  #watcher?: Watcher;
  #ops?: Operations<GenerationContext>;

  constructor(options: MasterOptions) {
    this.#options = options;
    this.#hooks = new HookRunner({
      config: options.config,
      masterEnv: options.masterEnv,
      self: options.self,
      log: this.#log,
      registry: this.#registry,
    });
    this.#pool = new ListenerPool({
      backlog: options.config.backlog,
      umask: options.config.umask,
      inheritedNames: options.inheritedNames,
    });
  }

  async run(): Promise<number> {
    const { config, upgrade } = this.#options;
    let context: GenerationContext;
    const starting = upgrade ? undefined : this.#hooks.fire("on_starting");
    if (starting && !(await starting).ok) {
      throw new ArbiterError(ExitCode.Runtime, "the on_starting hook failed; not starting");
    }
    try {
      if (config.pidfile) this.#pidfile = Pidfile.claim(config.pidfile);
      for (const { fd, text } of upgrade?.state.listeners ?? []) {
        this.#pool.adopt(fd, parseBind(text, "/"));
      }
      context = await prepareGeneration(config, this.#pool, this.#options.masterEnv);
      this.#systemd = await SystemdNotifier.fromEnv(this.#options.fullEnv);
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
      this.#ops = await this.#startOperations(config);
    } catch (error) {
      await this.#hub?.closeAll();
      this.#pool.closeAll();
      this.#pidfile?.remove();
      this.#systemd?.close();
      throw error;
    }
    if (upgrade?.state.notifyDir) {
      await Deno.remove(upgrade.state.notifyDir, { recursive: true }).catch(() => {});
    }
    // Sockets an upgrade handed over stay while the old workers may hold them.
    const inheritedWorkers = (upgrade?.state.workers.length ?? 0) > 0;
    this.#pool.release(inheritedWorkers ? this.#pool.list() : context.listeners);
    if (upgrade) {
      this.#startedAt = upgrade.state.startedAt;
      for (const warning of upgrade.warnings) this.#log.warn("upgrade: {warning}", { warning });
      this.#log.info(
        "arbiter {version} master re-executed in place (pid {pid}); took over {count} worker(s)",
        {
          version: this.#options.version,
          pid: Deno.pid,
          count: upgrade.state.workers.length,
        },
      );
    } else {
      this.#log.info("arbiter {version} master started (pid {pid})", {
        version: this.#options.version,
        pid: Deno.pid,
      });
    }
    this.#logListeners(context.listeners);
    this.#installSignals();
    const now = this.#now();
    this.#core = new MasterCore(settingsOf(config), context, {
      now,
      inherited: upgrade && upgrade.state.workers.length > 0
        ? { generation: upgrade.state.generation, workers: upgrade.state.workers }
        : undefined,
    });
    this.#workers!.adopt(
      this.#core.snapshot().workers.map((w) => ({ ...w, pid: w.pid! })),
      { ...context, listeners: this.#pool.list() },
    );
    this.#startSystemdWatchdog();
    this.#watch(config);
    await this.#apply(this.#core.start(now));
    this.#armTimer();
    while (this.#exitCode === undefined) {
      const event = await this.#queue.next();
      this.#beforeHandling(event);
      const desired = this.#core.snapshot().desiredWorkers;
      await this.#apply(this.#core.handle(event, this.#now()));
      const after = this.#core.snapshot().desiredWorkers;
      if (after !== desired) {
        this.#hooks.fire("nworkers_changed", { oldWorkers: desired, newWorkers: after });
      }
      this.#armTimer();
    }
    this.#watcher?.close();
    this.#workers?.close();
    await this.#ops?.close();
    await this.#hub?.closeAll();
    await this.#hooks.idle(); // post_exit of the last workers first: on_exit is the last word
    this.#hooks.fire("on_exit", { exitCode: this.#exitCode });
    await this.#hooks.idle();
    return this.#exitCode;
  }

  /** Executor-side bookkeeping an event needs before the core sees it. */
  #beforeHandling(event: MasterEvent): void {
    if (event.type === "probe") event.reply();
    this.#ops?.observe(event);
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

  #startOperations(config: Config): Promise<Operations<GenerationContext>> {
    return Operations.start(config, {
      snapshot: () => this.#core?.snapshot(),
      push: (event) => this.#queue.push(event),
      alive: () => this.#probeLoop(),
      version: this.#options.version,
      startedAt: this.#options.upgrade?.state.startedAt ?? this.#startedAt,
    });
  }

  /** Resolves true once the loop handles a probe event, false after 2 s or when stopped. */
  #probeLoop(): Promise<boolean> {
    if (this.#exitCode !== undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 2000);
      this.#queue.push({
        type: "probe",
        reply: () => {
          clearTimeout(timer);
          resolve(true);
        },
      });
    });
  }

  /** Rolling reload on file change (`reload = true`), for development. */
  #watch(config: Config): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (!config.reload) return;
    try {
      this.#watcher = watchForChanges({
        paths: reloadPathsOf(config),
        extensions: config.reload_extensions,
        onChange: (files) => {
          const first = files[0] ?? "?";
          const more = files.length > 1 ? ` and ${files.length - 1} more` : "";
          this.#queue.push({
            type: "request",
            action: "reload",
            source: `${first}${more} changed`,
          });
        },
        onError: (error) => this.#log.error("file watcher: {error}", { error: String(error) }),
      });
    } catch (error) {
      this.#log.error("cannot watch files for reload: {error}", { error: String(error) });
    }
  }

  #startSystemdWatchdog(): void {
    const interval = this.#systemd?.watchdogIntervalMs;
    if (interval === undefined) return;
    // Pinged from the loop, not the timer: a stuck loop stops the pings.
    this.#systemdWatchdog = setInterval(() => this.#queue.push({ type: "tick" }), interval);
  }

  #notifySystemd(...fields: string[]): void {
    this.#systemd?.send(...fields).catch((error) =>
      this.#log.warn("cannot notify systemd: {error}", { error: String(error) })
    );
  }

  #now(): number {
    return performance.now();
  }

  #installSignals(): void {
    for (const signal of SIGNALS) {
      const handler = () =>
        this.#queue.push({
          type: "signal",
          signal,
          hasTerminal: signal === "SIGWINCH" ? hasControllingTerminal() : undefined,
        });
      addSignalListener(signal, handler); // usr1: USR1 via signalfd (./usr1.ts)
      this.#signalHandlers.set(signal, handler);
    }
    // An image started by an in-place upgrade inherits a fully blocked mask
    // (see execUpgrade); now that every signal has a listener, let them in.
    blockAllSignals(false);
  }

  #armTimer(): void {
    const deadline = this.#core?.nextDeadline();
    if (deadline === this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = deadline;
    if (deadline === undefined || this.#exitCode !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.#queue.push({ type: "tick" });
    }, Math.max(0, Math.ceil(deadline - this.#now())));
  }

  async #apply(effects: MasterEffect[]): Promise<void> {
    if (this.#systemdWatchdog !== undefined) this.#maybePingSystemd();
    for (const effect of effects) {
      switch (effect.type) {
        case "spawn":
          this.#hooks.fire("pre_spawn", { workerId: effect.slot, generation: effect.generation });
          await this.#workers!.spawn(effect.serial, effect.slot, effect.generation, effect.context);
          break;
        case "kill":
          this.#workers!.kill(effect.serial, effect.signal);
          if (effect.signal === "SIGABRT") this.#fireWorkerTimeout(effect.serial);
          break;
        case "log":
          this.#log[effect.level](effect.message, effect.props ?? {});
          break;
        case "load-config":
          this.#loadConfig();
          this.#systemd?.reloading("reloading").catch(() => {});
          break;
        case "stopping":
          await this.#systemd?.send("STOPPING=1").catch(() => {});
          break;
        case "reload-done":
          this.#notifySystemd("READY=1", `STATUS=${this.#statusLine()}`);
          break;
        case "check-upgrade":
          this.#checkUpgrade();
          break;
        case "exec-upgrade":
          await this.#execUpgrade(effect.generation);
          break;
        case "reopen-logs":
          this.#options.logging.reopen();
          break;
        case "generation-ready":
          this.#notifySystemd("READY=1", `STATUS=${this.#statusLine()}`);
          this.#hooks.fire("when_ready", {
            generation: effect.generation,
            newWorkers: this.#core!.snapshot().desiredWorkers,
          });
          break;
        case "retire-generation":
          this.#releaseListeners();
          break;
        case "exit":
          this.#exit(effect.code);
          break;
      }
    }
  }

  #fireWorkerTimeout(serial: number): void {
    const record = this.#core!.snapshot().workers.find((w) => w.serial === serial);
    if (!record) return;
    this.#hooks.fire("worker_timeout", {
      event: record.stopReason === "boot timeout" ? "boot_timeout" : "worker_timeout",
      workerId: record.slot,
      workerPid: record.pid,
      generation: record.generation,
    });
  }

  #lastSystemdPing = 0;

  #maybePingSystemd(): void {
    const interval = this.#systemd?.watchdogIntervalMs;
    if (interval === undefined || this.#now() - this.#lastSystemdPing < interval * 0.9) return;
    this.#lastSystemdPing = this.#now();
    this.#notifySystemd("WATCHDOG=1");
  }

  #statusLine(): string {
    const snapshot = this.#core!.snapshot();
    const ready = snapshot.workers.filter((w) => w.state === "ready").length;
    return `${ready} of ${snapshot.desiredWorkers} worker(s) ready, generation ${snapshot.generation}`;
  }

  #checkUpgrade(): void {
    const { self, args, fullEnv } = this.#options;
    checkUpgrade(self, args, fullEnv, this.#registry)
      .then((error) => this.#queue.push({ type: "upgrade-checked", error }))
      .catch((error) => this.#queue.push({ type: "upgrade-checked", error: String(error) }));
  }

  async #execUpgrade(generation: number): Promise<void> {
    const { self, args, fullEnv, inheritedNames } = this.#options;
    const workers = this.#core!.snapshot().workers
      .filter((w) => w.pid !== undefined)
      .map((w) => ({ pid: w.pid!, slot: w.slot, generation: w.generation }));
    const state: UpgradeState = {
      version: 1,
      masterPid: Deno.pid,
      startedAt: this.#startedAt,
      generation,
      listeners: this.#pool.list().map((l) => ({ fd: l.fd, text: l.spec.text })),
      workers,
      notifyDir: this.#hub?.dir,
    };
    const env = { ...fullEnv };
    if (inheritedNames && inheritedNames.size > 0) {
      // Socket activation variables were taken out at start; say it again for the new image.
      env.LISTEN_FDS = String(inheritedNames.size);
      env.LISTEN_FDNAMES = [...inheritedNames.values()].join(":");
      env.LISTEN_PID = String(Deno.pid);
    }
    // What Deno opened closes at exec anyway (FD_CLOEXEC); these also remove files.
    this.#watcher?.close();
    await this.#ops?.close();
    const error = execUpgrade(self, args, env, state);
    this.#ops = await this.#startOperations(this.#options.config).catch(() => undefined);
    this.#watch(this.#options.config);
    this.#queue.push({ type: "upgrade-checked", error });
  }

  #loadConfig(): void {
    const { reloadConfig, masterEnv } = this.#options;
    reloadConfig()
      .then((config) => prepareGeneration(config, this.#pool, masterEnv))
      .then(async (context) => {
        const oldWorkers = this.#core!.snapshot().desiredWorkers;
        const hook = this.#hooks.fire("on_reload", {
          oldWorkers,
          newWorkers: context.config.workers,
        }, {
          config: context.config,
        });
        if (hook && !(await hook).ok) {
          this.#releaseListeners(); // those this refused config opened
          throw new Error("the on_reload hook failed");
        }
        await this.#adoptMasterSettings(context.config);
        this.#hooks.update(context.config);
        this.#watch(context.config);
        this.#pendingContexts.add(context);
        const served = this.#workers!.listenersInUse();
        this.#logListeners(context.listeners.filter((l) => !served.has(l)));
        this.#queue.push({ type: "config-loaded", settings: settingsOf(context.config), context });
      })
      .catch((error) => {
        this.#queue.push({ type: "config-failed", error: error?.message ?? String(error) });
      });
  }

  /** Applies the parts of a reloaded config that belong to the master itself. */
  async #adoptMasterSettings(config: Config): Promise<void> {
    const { logging } = this.#options;
    await logging.apply({
      level: config.log_level,
      format: config.log_format,
      file: config.log_file,
    });
    if (config.pidfile !== this.#pidfile?.path) {
      const next = config.pidfile ? Pidfile.claim(config.pidfile) : undefined;
      this.#pidfile?.remove();
      this.#pidfile = next;
    }
  }

  #logListeners(listeners: Listener[]): void {
    for (const l of listeners) {
      this.#log.info("listening at {address} (fd {fd})", { address: l.address, fd: l.fd });
    }
  }

  /** Closes listeners that neither the current generation nor any live worker uses. */
  #releaseListeners(): void {
    const keep = new Set<Listener>();
    const current = this.#core?.currentContext;
    for (const l of current?.listeners ?? []) keep.add(l);
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
    if (this.#systemdWatchdog !== undefined) clearInterval(this.#systemdWatchdog);
    for (const [signal, handler] of this.#signalHandlers) {
      removeSignalListener(signal, handler); // usr1: see ./usr1.ts
    }
    this.#signalHandlers.clear();
    this.#pool.closeAll();
    this.#pidfile?.remove();
    this.#exitCode = code;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}
