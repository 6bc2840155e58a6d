/**
 * A fake operating system for the executor's unit tests ({@link FakeOs}, an
 * {@link Os}): processes that exist only as records, exits the test decides,
 * listening sockets as records ({@link FakeSockets}), a clock that moves
 * only when told; and a fake notify hub. With them the
 * executor's effect handling is tested without processes; the same
 * scenarios run end to end on the real OS in tests/.
 *
 * @module
 */

import { tmpdir } from "node:os";
import { loadConfig } from "../config/load.ts";
import type { Logging } from "../logging/log.ts";
import { LineSink } from "../output/sink.ts";
import { runMaster } from "./master.ts";
import type { MasterOptions } from "./options.ts";
import type { Config } from "../config/types.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import type { WorkerLaunch } from "../spawn/spawner.ts";
import type { Event } from "../core/events.ts";
import type { GenerationContext } from "./generation.ts";
import type { Os, OsChild, OsSignals, ProcessStatus, TimerHandle } from "./os.ts";
import { FakeSockets } from "./_fake_sockets.ts";

export { type FakeSocket, FakeSockets } from "./_fake_sockets.ts";
import type { ReapedExit } from "./reaper.ts";
import type { WorkerHub } from "./workers.ts";

/** A process started through a {@link FakeOs}. */
export class FakeChild implements OsChild {
  readonly signals: Deno.Signal[] = [];
  readonly status: Promise<ProcessStatus>;
  #end!: (status: ProcessStatus) => void;
  #exited = false;
  readonly #signalWaiters: (() => void)[] = [];
  readonly #stderr?: ReadableStreamDefaultController<Uint8Array>;
  readonly #stderrStream?: ReadableStream<Uint8Array>;

  constructor(readonly pid: number, readonly launch: WorkerLaunch) {
    this.status = new Promise((resolve) => this.#end = resolve);
    if (launch.stderr === "piped" || launch.output === "piped") {
      let controller!: ReadableStreamDefaultController<Uint8Array>;
      this.#stderrStream = new ReadableStream({ start: (c) => void (controller = c) });
      this.#stderr = controller;
    }
  }

  get stdout(): ReadableStream<Uint8Array> {
    if (this.launch.output !== "piped") throw new TypeError("stdout is not piped");
    return new ReadableStream({ start: (c) => void this.status.then(() => c.close()) });
  }

  get stderr(): ReadableStream<Uint8Array> {
    if (!this.#stderrStream) throw new TypeError("stderr is not piped");
    return this.#stderrStream;
  }

  /** Writes `text` to its stderr (which must be piped). */
  writeStderr(text: string): void {
    this.#stderr!.enqueue(new TextEncoder().encode(text));
  }

  kill(signal: Deno.Signal): void {
    if (this.#exited) throw new Deno.errors.NotFound("the process has exited");
    this.signals.push(signal);
    for (const wake of this.#signalWaiters.splice(0)) wake();
  }

  /** Resolves once it has been sent `count` signals in all; returns them. */
  async signalled(count = 1): Promise<Deno.Signal[]> {
    while (this.signals.length < count) {
      await new Promise<void>((wake) => this.#signalWaiters.push(wake));
    }
    return this.signals.slice(0, count);
  }

  /** The process exits (its stderr, if piped, ends with it). */
  exit(code: number, signal: string | null = null): void {
    this.#exited = true;
    try {
      this.#stderr?.close();
    } catch { /* closed */ }
    this.#end({ code, signal });
  }
}

/**
 * Signals the test sends to the fake master alone. The process's real
 * signals would reach every fake master of the test process (test files run
 * side by side in one process), so the fake never listens for them.
 */
export class FakeSignals implements OsSignals {
  #push?: (event: Event<never>) => void;

  install(push: (event: Event<never>) => void): void {
    this.#push = push;
  }

  remove(): void {
    this.#push = undefined;
  }

  /** Delivers `signal` to the master, as its signal listener would. */
  send(signal: Extract<Event<never>, { type: "signal" }>["signal"]): void {
    if (!this.#push) throw new Error(`the fake master does not listen for ${signal} (yet)`);
    this.#push({ type: "signal", signal, hasTerminal: signal === "SIGWINCH" ? false : undefined });
  }
}

/** An {@link Os} of records: the test starts nothing and decides every exit. */
export class FakeOs implements Os {
  clock = 0;
  nextPid = 1000;
  readonly children: FakeChild[] = [];
  /** Signals sent by pid (to inherited workers). */
  readonly signalled: { pid: number; signal: Deno.Signal }[] = [];
  /** Children the runtime does not own that have exited, not yet reaped. */
  readonly zombies = new Map<number, ProcessStatus>();
  /** Pids that are our children outside the runtime (inherited workers). */
  readonly foreign = new Set<number>();
  /** When set, the next spawn throws it. */
  failNextSpawn?: Error;
  /**
   * When set, the next spawn moves the clock this far without firing a
   * timer: the master was paused (SIGSTOP, a frozen VM) while it spawned.
   */
  pauseInNextSpawnMs?: number;
  readonly sockets = new FakeSockets();
  readonly signals = new FakeSignals();
  readonly #timers = new Map<number, { at: number; fire: () => void }>();
  #nextTimer = 1;
  readonly #spawnWaiters: (() => void)[] = [];
  readonly #armWaiters: (() => void)[] = [];

  spawn(_self: SelfInvocation, launch: WorkerLaunch): OsChild {
    const error = this.failNextSpawn;
    this.failNextSpawn = undefined;
    if (error) throw error;
    this.clock += this.pauseInNextSpawnMs ?? 0;
    this.pauseInNextSpawnMs = undefined;
    const child = new FakeChild(this.nextPid++, launch);
    this.children.push(child);
    for (const wake of this.#spawnWaiters.splice(0)) wake();
    return child;
  }

  /** Resolves once `count` processes were started in all. */
  async started(count: number): Promise<FakeChild[]> {
    while (this.children.length < count) {
      await new Promise<void>((wake) => this.#spawnWaiters.push(wake));
    }
    return this.children.slice(0, count);
  }

  killPid(pid: number, signal: Deno.Signal): void {
    if (!this.foreign.has(pid)) throw new Deno.errors.NotFound(`no process ${pid}`);
    this.signalled.push({ pid, signal });
  }

  reapForeign(watched: ReadonlySet<number>): ReapedExit[] {
    const exits: ReapedExit[] = [];
    for (const [pid, status] of this.zombies) {
      this.zombies.delete(pid);
      this.foreign.delete(pid);
      if (watched.has(pid)) exits.push({ pid, ...status });
    }
    return exits;
  }

  now(): number {
    return this.clock;
  }

  collectGarbage(): boolean {
    return false;
  }

  trimHeap(): boolean {
    return false;
  }

  setTimer(fire: () => void, ms: number): TimerHandle {
    const id = this.#nextTimer++;
    this.#timers.set(id, { at: this.clock + ms, fire });
    for (const wake of this.#armWaiters.splice(0)) wake();
    return id;
  }

  /**
   * Resolves once a timer is armed: the loop acts on an event a moment after
   * it is pushed, so a test waits for the next deadline to be armed before
   * it moves the clock past it.
   */
  async armedTimer(): Promise<void> {
    while (this.#timers.size === 0) {
      await new Promise<void>((wake) => this.#armWaiters.push(wake));
    }
  }

  /** Resolves once a timer is armed that falls due by `at` (the clock's time). */
  async timerDue(at: number): Promise<void> {
    while (![...this.#timers.values()].some((t) => t.at <= at)) {
      await new Promise<void>((wake) => this.#armWaiters.push(wake));
    }
  }

  clearTimer(handle: TimerHandle | undefined): void {
    this.#timers.delete(handle as number);
  }

  /** How many timers are armed. */
  get armed(): number {
    return this.#timers.size;
  }

  /** Moves the clock by `ms`, firing the timers that fall due, in order. */
  advance(ms: number): void {
    const end = this.clock + ms;
    for (;;) {
      const due = [...this.#timers].filter(([, t]) =>
        t.at <= end
      ).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.clock = Math.max(this.clock, due[1].at);
      due[1].fire();
    }
    this.clock = end;
  }
}

/** A notify hub of records: endpoints are names, nothing is bound. */
export class FakeHub implements WorkerHub {
  readonly open_ = new Set<number>();
  readonly pids = new Map<number, number>();

  open(serial: number): Promise<{ notifySocket: string; streamSocket: string }> {
    this.open_.add(serial);
    return Promise.resolve({
      notifySocket: `/fake/${serial}/notify`,
      streamSocket: `/fake/${serial}/stream`,
    });
  }

  setWorkerPid(serial: number, pid: number): void {
    this.pids.set(serial, pid);
  }

  close(serial: number): void {
    this.open_.delete(serial);
    this.pids.delete(serial);
  }
}

/** A generation context: the default config with `values` over it, and no listeners. */
export async function fakeContext(values: Partial<Config> = {}): Promise<GenerationContext> {
  const config = await loadConfig({ command: ["app"], overrides: {} }, {}, "/");
  return {
    config: { ...config, ...values },
    program: "/usr/bin/app",
    listeners: [],
    env: { PATH: "/usr/bin" },
  };
}

/** Collects the events the executor pushes; `next(type)` waits for the next of one type. */
export class EventLog {
  readonly events: Event<GenerationContext>[] = [];
  readonly #waiters: (() => void)[] = [];

  readonly push = (event: Event<GenerationContext>): void => {
    this.events.push(event);
    for (const wake of this.#waiters.splice(0)) wake();
  };

  async next<T extends Event<GenerationContext>["type"]>(
    type: T,
  ): Promise<Extract<Event<GenerationContext>, { type: T }>> {
    for (;;) {
      const i = this.events.findIndex((e) => e.type === type);
      if (i >= 0) {
        return this.events.splice(i, 1)[0] as Extract<Event<GenerationContext>, { type: T }>;
      }
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }
}

const discard = { write: (p: Uint8Array) => Promise.resolve(p.length) };
/** Logging that writes nothing (the master's log lines go to LogTape's default). */
const quietLogging: Logging = {
  reopen() {},
  apply: () => Promise.resolve(),
  close: () => Promise.resolve(),
  flush: () => Promise.resolve(),
  stdout: new LineSink(discard),
  stderr: new LineSink(discard),
  droppedLines: () => 0,
};

/**
 * Runs the real master loop and core on a {@link FakeOs}: `workers` workers
 * of the default config bound at 127.0.0.1:0, `more` over it; `exit` is
 * its exit code. It takes SIGTERM through its own listener (the test
 * process stays).
 */
export async function startFakeMaster(
  workers: number,
  more: Partial<Config> = {},
  options: Partial<MasterOptions> = {},
): Promise<{ os: FakeOs; exit: Promise<number> }> {
  const os = new FakeOs();
  const loaded = await loadConfig(
    { command: ["app"], overrides: { workers, bind: ["127.0.0.1:0"] } },
    { PATH: "/bin:/usr/bin" },
    "/",
  );
  const config = { ...loaded, ...more };
  config.command = ["/bin/true"]; // resolvable: the fake never runs it
  const exit = runMaster({
    config,
    reloadConfig: () => Promise.resolve(config),
    logging: quietLogging,
    masterEnv: { PATH: "/bin:/usr/bin" },
    self: { executable: Deno.execPath(), args: [], compiled: false },
    version: "test",
    args: [],
    fullEnv: {},
    runtimeDir: tmpdir(),
    os,
    ...options,
  });
  return { os, exit };
}
