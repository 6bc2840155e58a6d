/**
 * The private master that `arbiter verify` runs the user's worker under: the
 * real arbiter, started as a child process of this same executable (so what
 * is verified is exactly what production runs), with a private config file,
 * logging JSON Lines. It is observed only from outside — its log, its
 * output, and `/proc` — and driven only by signals.
 *
 * Invariants:
 * - Both output pipes are read continuously, so the master never blocks on a
 *   full pipe; every line becomes an event, in order.
 * - While it runs, every descendant is recorded (pid and start time) every
 *   {@link POLL_MS} ms, so "nothing left running" can be checked afterwards,
 *   and {@link PrivateMaster.kill} can SIGKILL whatever is left without ever
 *   hitting a reused pid.
 * - Waiting for an event always has a deadline; nothing here waits forever.
 *
 * @module
 */

import type { SelfInvocation } from "../spawn/self.ts";
import { PRIVATE_ENV } from "../spawn/private_env.ts";
import { parseLine, type StampedEvent, WorkerBook } from "./master_log.ts";
import { commandLine, descendantsOf, stillRunning } from "./proc.ts";

/** How often descendants are recorded. */
export const POLL_MS = 50;

/** A process seen under the private master. */
export interface SeenProcess {
  pid: number;
  starttime: number;
  /** Its command line when first seen. */
  command: string;
}

type Waiter = { test: (e: StampedEvent) => boolean; resolve: (e: StampedEvent) => void };

/** The running private master. */
export class PrivateMaster {
  readonly pid: number;
  /** Resolves once the master has exited and its output is read. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Everything it logged, in order. */
  readonly events: StampedEvent[] = [];
  readonly workers: WorkerBook = new WorkerBook();

  #child: Deno.ChildProcess;
  #waiters = new Set<Waiter>();
  #seen = new Map<number, SeenProcess>();
  #poller?: ReturnType<typeof setInterval>;
  #exited?: Deno.CommandStatus;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = child.pid;
    const drained = Promise.all([this.#read(child.stdout), this.#read(child.stderr)]);
    this.#poller = setInterval(() => this.#record(), POLL_MS);
    this.status = child.status.then(async (s) => {
      this.#exited = s;
      clearInterval(this.#poller);
      // A leftover grandchild may hold the pipes open; do not wait on it long.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([drained, new Promise((r) => timer = setTimeout(r, 1000))]);
      clearTimeout(timer);
      return s;
    });
  }

  /**
   * Starts `self` (this program) as a master with `args`, in `cwd`, with
   * verify's environment minus socket activation and notify variables.
   */
  static start(self: SelfInvocation, args: string[], cwd: string): PrivateMaster {
    const env = Deno.env.toObject();
    // verify's own systemd variables are not the private master's.
    for (const key of PRIVATE_ENV) delete env[key];
    const child = new Deno.Command(self.executable, {
      args: [...self.args, ...args],
      cwd,
      env: { ...env, NO_COLOR: "1" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new PrivateMaster(child);
  }

  /** True once the master has exited. */
  get exited(): boolean {
    return this.#exited !== undefined;
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        for (const line of lines) this.#onLine(line);
      }
    } catch { /* the pipe broke: the master is gone */ }
    if (rest) this.#onLine(rest);
  }

  #onLine(line: string): void {
    const parsed = parseLine(line);
    if (!parsed) return;
    const event = { ...parsed, at: performance.now() } as StampedEvent;
    this.events.push(event);
    this.workers.apply(event);
    if (event.type === "started") this.#record();
    for (const w of [...this.#waiters]) {
      if (w.test(event)) {
        this.#waiters.delete(w);
        w.resolve(event);
      }
    }
  }

  /**
   * The first event after index `from` of {@link events} that passes `test`,
   * or undefined once `timeoutMs` passes or the master exits without one.
   */
  waitFor<T extends StampedEvent>(
    test: (e: StampedEvent) => e is T,
    timeoutMs: number,
    from?: number,
  ): Promise<T | undefined>;
  waitFor(
    test: (e: StampedEvent) => boolean,
    timeoutMs: number,
    from?: number,
  ): Promise<StampedEvent | undefined>;
  waitFor(
    test: (e: StampedEvent) => boolean,
    timeoutMs: number,
    from = 0,
  ): Promise<StampedEvent | undefined> {
    const found = this.events.slice(from).find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        test,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const finish = () => {
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        resolve(undefined);
      };
      const timer = setTimeout(finish, timeoutMs);
      this.#waiters.add(waiter);
      this.status.then(finish, finish);
    });
  }

  /** Waits for the master to exit, up to `timeoutMs`; undefined if it still runs. */
  async waitExit(timeoutMs: number): Promise<Deno.CommandStatus | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), timeoutMs));
    try {
      return await Promise.race([this.status, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to the master; false if it has exited. */
  signal(sig: Deno.Signal): boolean {
    if (this.#exited) return false;
    try {
      this.#child.kill(sig);
      return true;
    } catch {
      return false;
    }
  }

  #record(): void {
    if (this.#exited) return;
    for (const d of descendantsOf(this.pid)) {
      const known = this.#seen.get(d.pid);
      if (known && known.starttime === d.starttime) continue;
      this.#seen.set(d.pid, { pid: d.pid, starttime: d.starttime, command: commandLine(d.pid) });
    }
  }

  /** Every process seen under the master that is still running. */
  survivors(): SeenProcess[] {
    return [...this.#seen.values()].filter((p) => stillRunning(p.pid, p.starttime));
  }

  /** Records a process that appeared under verify itself (an orphan of the master's tree). */
  adopt(p: SeenProcess): void {
    if (!this.#seen.has(p.pid)) this.#seen.set(p.pid, p);
  }

  /** SIGKILLs the master if it runs, then every recorded process still running. */
  async kill(): Promise<void> {
    this.#record();
    this.signal("SIGKILL");
    await this.status;
    for (const p of this.survivors()) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone meanwhile */ }
    }
  }
}
