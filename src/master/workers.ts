/**
 * The worker processes, as the executor sees them: starting one (notify
 * endpoints, environment, exec shim, output), signalling one, and learning of
 * its exit — always as an event on the master's queue, never by acting.
 *
 * Invariants:
 * - A worker is signalled only through the `Deno.ChildProcess` that started
 *   it, or, for one inherited across an in-place upgrade, by pid while it is
 *   still unreaped — so the pid cannot have been reused: it is our child.
 * - A record stays until the loop has handled the worker's exit (`forget`),
 *   so hooks and listener bookkeeping still see it then.
 * - Zombies `Deno.Command` does not own (inherited workers, orphans under
 *   PID 1) are reaped here and only here.
 *
 * @module
 */

import type { NotifyHub } from "../notify/hub.ts";
import { notifyEnv } from "../notify/hub.ts";
import { lineWriter, pipePrefixed } from "../output/prefix.ts";
import { copyBytes, OutputTail, tapInto } from "../output/tail.ts";
import type { Listener } from "../sockets/listeners.ts";
import type { ChildRegistry } from "../spawn/children.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { spawnWorker } from "../spawn/spawner.ts";
import type { Event } from "../core/events.ts";
import type { GenerationContext } from "./generation.ts";
import { reapForeignChildren } from "./reaper.ts";

/**
 * After a worker whose stderr is kept exits, how long its last output may
 * take to arrive (a process it started may hold the pipe open for longer).
 */
const STDERR_TAIL_WAIT_MS = 250;

/** How often inherited workers are polled for exit, besides SIGCHLD. */
const INHERITED_POLL_MS = 500;

/** One worker process. */
export interface WorkerProcess {
  /** Undefined for a worker inherited across an in-place upgrade (not a Deno child). */
  child?: Deno.ChildProcess;
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

/** What the worker processes need from the master. */
export interface WorkerProcessesOptions {
  push: (event: Event<GenerationContext>) => void;
  hub: NotifyHub;
  registry: ChildRegistry;
  self: SelfInvocation;
  /** The environment of the exec shim itself. */
  shimEnv: Record<string, string>;
}

/** The master's live worker processes, by serial. */
export class WorkerProcesses {
  readonly #options: WorkerProcessesOptions;
  readonly #bySerial = new Map<number, WorkerProcess>();
  /** Inherited workers: pid → serial. */
  readonly #inherited = new Map<number, number>();
  #poll?: ReturnType<typeof setInterval>;
  /** Shared by all workers in `worker_output = "prefix"`, so lines never interleave. */
  readonly #stdoutLines = lineWriter(Deno.stdout);
  readonly #stderrLines = lineWriter(Deno.stderr);

  constructor(options: WorkerProcessesOptions) {
    this.#options = options;
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
    let child: Deno.ChildProcess;
    try {
      const owner = context.uid === undefined ? undefined : { uid: context.uid, gid: context.gid };
      Object.assign(env, notifyEnv(await hub.open(serial, owner)));
      child = spawnWorker(this.#options.self, {
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
    this.#options.registry.track(child);
    this.#bySerial.set(serial, { child, pid: child.pid, slot, generation, context });
    push({ type: "spawned", serial, pid: child.pid });
    // Not awaited: a slow destination backs up into the worker's pipe, never the loop.
    let stderrDone: Promise<void> | undefined;
    const stderr = tail && child.stderr ? tapInto(child.stderr, tail) : undefined;
    if (prefixed) {
      const common = { id: slot, pid: child.pid, generation, format: config.log_format };
      pipePrefixed(child.stdout, { ...common, stream: "stdout", write: this.#stdoutLines });
      stderrDone = pipePrefixed(stderr ?? child.stderr, {
        ...common,
        stream: "stderr",
        write: this.#stderrLines,
      });
    } else if (stderr) {
      stderrDone = copyBytes(stderr, Deno.stderr); // "inherit": the bytes, unchanged
    }
    child.status.then(async (status) => {
      let lastStderr: string[] | undefined;
      if (tail) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, STDERR_TAIL_WAIT_MS);
        });
        await Promise.race([stderrDone, late]);
        clearTimeout(timer);
        lastStderr = tail.lines();
      }
      push({ type: "exited", serial, code: status.code, signal: status.signal, lastStderr });
    });
  }

  /** Sends `signal` to worker `serial`, if it is still ours. */
  kill(serial: number, signal: Deno.Signal): void {
    const worker = this.#bySerial.get(serial);
    try {
      if (worker?.child) worker.child.kill(signal);
      else if (worker && this.#inherited.has(worker.pid)) Deno.kill(worker.pid, signal);
    } catch { /* it exited already; its exit event is on the queue */ }
  }

  /** The process of worker `serial`, while it is ours. */
  get(serial: number): WorkerProcess | undefined {
    return this.#bySerial.get(serial);
  }

  /** Drops worker `serial` once its exit has been handled; returns its record. */
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
    if (this.#inherited.size > 0) {
      this.#poll = setInterval(
        () => this.#options.push({ type: "signal", signal: "SIGCHLD" }),
        INHERITED_POLL_MS,
      );
    }
  }

  /** Reaps children Deno does not own; reports inherited workers' exits as events. */
  reapForeign(): void {
    const exits = reapForeignChildren(this.#options.registry, new Set(this.#inherited.keys()));
    for (const { pid, code, signal } of exits) {
      const serial = this.#inherited.get(pid)!;
      this.#inherited.delete(pid);
      this.#options.push({ type: "exited", serial, code, signal });
    }
    if (this.#inherited.size === 0) this.#stopPolling();
  }

  /** Every listener some live worker holds. */
  listenersInUse(): Set<Listener> {
    const used = new Set<Listener>();
    for (const { context } of this.#bySerial.values()) {
      for (const l of context.listeners) used.add(l);
    }
    return used;
  }

  /** Stops the inherited-worker poll (the loop is ending). */
  close(): void {
    this.#stopPolling();
  }

  #stopPolling(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
  }
}
