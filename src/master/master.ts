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
import { type Listener, ListenerPool } from "../sockets/listeners.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { spawnWorker } from "../spawn/spawner.ts";
import { MasterCore } from "./core.ts";
import type { Effect, Event, MasterSignal } from "./events.ts";
import { type GenerationContext, prepareGeneration, settingsOf } from "./generation.ts";
import { EventQueue } from "./queue.ts";

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
}

const SIGNALS: MasterSignal[] = [
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

interface WorkerProcess {
  child: Deno.ChildProcess;
  context: GenerationContext;
}

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
  readonly #children = new Map<number, WorkerProcess>();
  /** Contexts loaded by a reload whose event the core has not handled yet. */
  readonly #pendingContexts = new Set<GenerationContext>();
  readonly #log = getLog();
  #pool: ListenerPool;
  #pidfile?: Pidfile;
  #core?: MasterCore<GenerationContext>;
  #timer?: ReturnType<typeof setTimeout>;
  #timerAt?: number;
  #exitCode?: number;
  #signalHandlers = new Map<MasterSignal, () => void>();

  constructor(options: MasterOptions) {
    this.#options = options;
    this.#pool = new ListenerPool({
      backlog: options.config.backlog,
      umask: options.config.umask,
      inheritedNames: options.inheritedNames,
    });
  }

  async run(): Promise<number> {
    const { config } = this.#options;
    let context: GenerationContext;
    try {
      if (config.pidfile) this.#pidfile = Pidfile.claim(config.pidfile);
      context = await prepareGeneration(config, this.#pool, this.#options.masterEnv);
    } catch (error) {
      this.#pool.closeAll();
      this.#pidfile?.remove();
      throw error;
    }
    this.#log.info("arbiter {version} master started (pid {pid})", {
      version: this.#options.version,
      pid: Deno.pid,
    });
    this.#logListeners(context.listeners);
    this.#installSignals();
    this.#core = new MasterCore(settingsOf(config), context);
    this.#apply(this.#core.start(this.#now()));
    this.#armTimer();
    while (this.#exitCode === undefined) {
      const event = await this.#queue.next();
      if (event.type === "config-loaded") this.#pendingContexts.delete(event.context);
      this.#apply(this.#core.handle(event, this.#now()));
      this.#armTimer();
    }
    return this.#exitCode;
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
      Deno.addSignalListener(signal, handler);
      this.#signalHandlers.set(signal, handler);
    }
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

  #apply(effects: MasterEffect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case "spawn":
          this.#spawn(effect.serial, effect.slot, effect.context);
          break;
        case "kill":
          this.#kill(effect.serial, effect.signal);
          break;
        case "log":
          this.#log[effect.level](effect.message, effect.props ?? {});
          break;
        case "load-config":
          this.#loadConfig();
          break;
        case "reopen-logs":
          this.#options.logging.reopen();
          break;
        case "generation-ready":
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

  #spawn(serial: number, slot: number, context: GenerationContext): void {
    const { config } = context;
    const env = { ...context.env, ARBITER_WORKER_ID: String(slot) };
    let child: Deno.ChildProcess;
    try {
      child = spawnWorker(this.#options.self, {
        spec: {
          program: context.program,
          argv: config.command,
          env,
          fds: context.listeners.map((l) => l.fd),
          masterPid: Deno.pid,
          umask: config.umask,
          uid: context.uid,
          gid: context.gid,
        },
        cwd: config.chdir,
        shimEnv: this.#options.masterEnv,
        output: "inherit",
      });
    } catch (error) {
      this.#queue.push({ type: "spawn-failed", serial, error: String(error) });
      return;
    }
    this.#children.set(serial, { child, context });
    this.#queue.push({ type: "spawned", serial, pid: child.pid });
    child.status.then((status) => {
      this.#children.delete(serial);
      this.#queue.push({ type: "exited", serial, code: status.code, signal: status.signal });
    });
  }

  #kill(serial: number, signal: Deno.Signal): void {
    try {
      this.#children.get(serial)?.child.kill(signal);
    } catch { /* it exited already; its exit event is on the queue */ }
  }

  #loadConfig(): void {
    const { reloadConfig, masterEnv } = this.#options;
    reloadConfig()
      .then((config) => prepareGeneration(config, this.#pool, masterEnv))
      .then(async (context) => {
        await this.#adoptMasterSettings(context.config);
        this.#pendingContexts.add(context);
        this.#logListeners(context.listeners.filter((l) => !this.#isServed(l)));
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

  #isServed(listener: Listener): boolean {
    for (const { context } of this.#children.values()) {
      if (context.listeners.includes(listener)) return true;
    }
    return false;
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
    for (const { context } of this.#children.values()) {
      for (const l of context.listeners) keep.add(l);
    }
    for (const l of this.#pool.release(keep)) {
      this.#log.info("closed listener {address}: no worker uses it any more", {
        address: l.address,
      });
    }
  }

  #exit(code: number): void {
    for (const [signal, handler] of this.#signalHandlers) {
      Deno.removeSignalListener(signal, handler);
    }
    this.#signalHandlers.clear();
    this.#pool.closeAll();
    this.#pidfile?.remove();
    this.#exitCode = code;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}
