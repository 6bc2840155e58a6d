/**
 * The worker processes, as the executor sees them: starting one (notify
 * endpoints, environment, exec shim, output), signalling one, and learning of
 * its exit — always as an event on the master's queue, never by acting.
 *
 * Invariants:
 * - A worker is signalled only through the `Deno.ChildProcess` that started
 *   it, or, for one inherited across an in-place upgrade, by pid while it is
 *   still unreaped — so the pid cannot have been reused: it is our child.
 *   Its process group (and what a gone worker left there) is signalled only
 *   after process_group.ts has checked that the group is provably ours.
 * - A record stays until the core has judged the worker's end (its
 *   `worker-gone` effect, then `forget`), so listener bookkeeping counts its
 *   listeners until then.
 * - Zombies `Deno.Command` does not own (inherited workers, orphans under
 *   PID 1) are reaped here and only here, when the core says so
 *   (`reap-children`: on SIGCHLD, and on its poll while inherited workers live).
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { NotifyHub } from "../notify/hub.ts";
import { notifyEnv } from "../notify/hub.ts";
import { pipePrefixed } from "../output/prefix.ts";
import { type LineSink, workerByteWriter, workerLineWriter } from "../output/sink.ts";
import { copyBytes, OutputTail, tapInto } from "../output/tail.ts";
import { RecentOutput, type RecentQuery } from "../output/recent.ts";
import type { LogsReport } from "../control/api.ts";
import type { Listener } from "../sockets/listeners.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import type { Event } from "../core/events.ts";
import type { GenerationContext } from "./generation.ts";
import type { Os, OsChild, TimerHandle } from "./os.ts";
import { type GroupSignalResult, signalWorkerGroup, sweepGroup } from "../spawn/process_group.ts";

/**
 * After a worker whose stderr is kept exits, how long its last output may
 * take to arrive (a process it started may hold the pipe open for longer).
 */
const STDERR_TAIL_WAIT_MS = 250;

/** One worker process. */
export interface WorkerProcess {
  /** Undefined for a worker inherited across an in-place upgrade (not a Deno child). */
  child?: OsChild;
  pid: number;
  slot: number;
  generation: number;
  context: GenerationContext;
}

/** Which worker to start, with what (the core's `spawn` effect). */
export interface WorkerToStart {
  serial: number;
  slot: number;
  generation: number;
  context: GenerationContext;
  /** Keep its last lines of stderr for the `exited` event (its slot failed to boot before). */
  captureStderr?: boolean;
}

/** The notify hub's part a worker needs: its endpoints, bound to its pid, closed at its end. */
export type WorkerHub = Pick<NotifyHub, "open" | "setWorkerPid" | "close">;

/** What the worker processes need from the master. */
export interface WorkerProcessesOptions {
  push: (event: Event<GenerationContext>) => void;
  hub: WorkerHub;
  /** Processes, signals and the clock (the real OS, or a fake in unit tests). */
  os: Os;
  self: SelfInvocation;
  /** The environment of the exec shim itself. */
  shimEnv: Record<string, string>;
  /** The master's own stdout and stderr: bounded, never blocking the loop (src/output/sink.ts). */
  stdout: LineSink;
  stderr: LineSink;
}

/** The master's live worker processes, by serial. */
export class WorkerProcesses {
  readonly #options: WorkerProcessesOptions;
  readonly #bySerial = new Map<number, WorkerProcess>();
  /** Inherited workers: pid → serial. */
  readonly #inherited = new Map<number, number>();
  /** Shared by all workers in `worker_output = "prefix"`, so lines never interleave. */
  readonly #stdoutLines: (line: string) => Promise<void>;
  readonly #stderrLines: (line: string) => Promise<void>;
  /** The recent lines of each slot in `worker_output = "prefix"`, for `ctl logs`. */
  readonly recent = new RecentOutput();

  constructor(options: WorkerProcessesOptions) {
    this.#options = options;
    this.#stdoutLines = workerLineWriter(options.stdout);
    this.#stderrLines = workerLineWriter(options.stderr);
  }

  /** Starts worker `serial`; answers with a `spawned` or `spawn-failed` event, later `exited`. */
  async spawn(worker: WorkerToStart): Promise<void> {
    const { serial, slot, generation, context } = worker;
    const { config } = context;
    const { push, hub } = this.#options;
    const env: Record<string, string> = { ...context.env, ARBITER_WORKER_ID: String(slot) };
    const pidEnv: string[] = [];
    if (config.timeout > 0) {
      // An integer ≥ 1 (0 would read as "off" to sd_watchdog_enabled); the
      // schema caps timeout, so this never needs exponent notation.
      env.WATCHDOG_USEC = String(Math.max(1, Math.round(config.timeout * 1_000_000)));
      pidEnv.push("WATCHDOG_PID");
    }
    const prefixed = config.worker_output === "prefix";
    const tail = worker.captureStderr ? new OutputTail() : undefined;
    let child: OsChild;
    try {
      const owner = context.uid === undefined ? undefined : { uid: context.uid, gid: context.gid };
      Object.assign(env, notifyEnv(await hub.open(serial, owner)));
      child = this.#options.os.spawn(this.#options.self, {
        spec: {
          program: context.program,
          argv: config.command,
          env,
          pidEnv,
          fds: context.listeners.map((l) => l.fd),
          masterPid: Deno.pid,
          umask: config.umask,
          uid: context.uid,
          gid: context.gid,
          blockUsr1: config.worker_usr1 === "blocked",
        },
        cwd: config.chdir,
        shimEnv: this.#options.shimEnv,
        output: prefixed ? "piped" : "inherit",
        stderr: prefixed || tail ? "piped" : "inherit",
      });
    } catch (error) {
      push({ type: "spawn-failed", serial, error: String(error) });
      return;
    }
    hub.setWorkerPid(serial, child.pid); // its notify sockets accept only this process tree
    this.#bySerial.set(serial, { child, pid: child.pid, slot, generation, context });
    push({ type: "spawned", serial, pid: child.pid });
    // Not awaited: a slow destination backs up into the worker's pipe, never the loop.
    let stderrDone: Promise<void> | undefined;
    const stderr = tail && child.stderr ? tapInto(child.stderr, tail) : undefined;
    if (prefixed) {
      const common = { id: slot, pid: child.pid, generation, format: config.log_format };
      const tap = (stream: "stdout" | "stderr") => (line: string) =>
        this.recent.push(slot, child.pid, stream, line);
      pipePrefixed(child.stdout, {
        ...common,
        stream: "stdout",
        write: this.#stdoutLines,
        tap: tap("stdout"),
      });
      stderrDone = pipePrefixed(stderr ?? child.stderr, {
        ...common,
        stream: "stderr",
        write: this.#stderrLines,
        tap: tap("stderr"),
      });
    } else if (stderr) {
      // "inherit": the bytes, unchanged
      stderrDone = copyBytes(stderr, workerByteWriter(this.#options.stderr));
    }
    child.status.then(async (status) => {
      let lastStderr: string[] | undefined;
      if (tail) {
        const { os } = this.#options;
        let timer: TimerHandle | undefined;
        const late = new Promise<void>((resolve) => {
          timer = os.setTimer(resolve, STDERR_TAIL_WAIT_MS);
        });
        await Promise.race([stderrDone, late]);
        os.clearTimer(timer);
        lastStderr = tail.lines();
      }
      push({ type: "exited", serial, code: status.code, signal: status.signal, lastStderr });
    });
  }

  /**
   * Sends `signal` to worker `serial`, if it is still ours; with `group`, to
   * its whole process group (the worker itself alone while the exec shim has
   * not made the group yet).
   */
  kill(serial: number, signal: Deno.Signal, group = false): void {
    const worker = this.#bySerial.get(serial);
    if (worker && group && this.#unreaped(worker) && signalWorkerGroup(worker.pid, signal)) return;
    try {
      if (worker?.child) worker.child.kill(signal);
      else if (worker && this.#inherited.has(worker.pid)) {
        this.#options.os.killPid(worker.pid, signal);
      }
    } catch { /* it exited already; its exit event is on the queue */ }
  }

  /**
   * Signals (or, without `signal`, only counts) what a gone worker left in
   * its process group `pgid`, if that group is provably ours.
   */
  sweepGroup(pgid: number, signal?: Deno.Signal): GroupSignalResult {
    return sweepGroup(pgid, signal, new Set([...this.#bySerial.values()].map((w) => w.pid)));
  }

  /** Whether the worker's pid is still held by it (so its group number cannot be reused). */
  #unreaped(worker: WorkerProcess): boolean {
    return worker.child !== undefined || this.#inherited.has(worker.pid);
  }

  /** The process of worker `serial`, while it is ours. */
  get(serial: number): WorkerProcess | undefined {
    return this.#bySerial.get(serial);
  }

  /** Drops worker `serial` once the core has judged its end; returns its record. */
  forget(serial: number): WorkerProcess | undefined {
    const worker = this.#bySerial.get(serial);
    this.#bySerial.delete(serial);
    this.#options.hub.close(serial);
    return worker;
  }

  /** Takes over workers the previous image handed over (in-place upgrade). */
  adopt(
    workers: { serial: number; pid: number; slot: number; generation: number }[],
    context: GenerationContext,
  ): void {
    for (const w of workers) {
      this.#inherited.set(w.pid, w.serial);
      this.#bySerial.set(w.serial, { ...w, context });
    }
  }

  /** Reaps children Deno does not own; reports inherited workers' exits as events. */
  reapForeign(): void {
    const exits = this.#options.os.reapForeign(new Set(this.#inherited.keys()));
    for (const { pid, code, signal } of exits) {
      const serial = this.#inherited.get(pid)!;
      this.#inherited.delete(pid);
      this.#options.push({ type: "exited", serial, code, signal });
    }
  }

  /**
   * Recent output for `ctl logs`; `captured` while some live worker's output
   * is piped through the master (`worker_output = "prefix"`).
   */
  logs(query: RecentQuery): LogsReport {
    const captured = [...this.#bySerial.values()].some((w) =>
      w.child !== undefined && w.context.config.worker_output === "prefix"
    );
    return { captured, ...this.recent.read(query) };
  }

  /** Every listener some live worker holds. */
  listenersInUse(): Set<Listener> {
    const used = new Set<Listener>();
    for (const { context } of this.#bySerial.values()) {
      for (const l of context.listeners) used.add(l);
    }
    return used;
  }
}
