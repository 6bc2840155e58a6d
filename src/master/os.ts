/**
 * The executor's seam to the operating system: starting a worker, signalling
 * a process, learning of exits the runtime does not report, the listening
 * sockets ({@link OsSockets}), and the clock and timer. {@link denoOs} is the real thing; `src/master/_testing.ts` has
 * a fake, so the executor's effect handling is unit tested without
 * processes. It decides nothing, like the rest of the executor: it only
 * does what it is told.
 *
 * @module
 */

import type { Event } from "../core/events.ts";
import type { ChildRegistry } from "../spawn/children.ts";
import type { SelfInvocation } from "../spawn/self.ts";
import { spawnWorker, type WorkerLaunch } from "../spawn/spawner.ts";
import { type ReapedExit, reapForeignChildren } from "./reaper.ts";
import { kernelListeners, type ListenerOpener } from "../sockets/listeners.ts";
import { SignalListeners } from "./signals.ts";
import { resumeHandshakes, shrinkQueue, stopHandshakes } from "../sys/handshake_filter.ts";
import { releaseFreedMemory } from "../sys/process.ts";
import { type ListenerQueue, type SampledListener, sampleQueues } from "../observe/queue.ts";

/** How a process ended: its exit code, or the signal that ended it. */
export interface ProcessStatus {
  code: number;
  signal: string | null;
}

/** A started worker process: what the executor uses of a `Deno.ChildProcess`. */
export interface OsChild {
  readonly pid: number;
  /** Resolves once the process has exited (and been reaped). */
  readonly status: Promise<ProcessStatus>;
  /** Only when started with `"piped"` output (Deno's getters throw otherwise). */
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** @throws when the process is gone already */
  kill(signal: Deno.Signal): void;
}

/**
 * The listening sockets as the executor uses them: opening, adopting and
 * restoring them (through the {@link ListenerOpener} a `ListenerPool` is
 * given), the stop's handshake filter and its fallback, and reading the
 * accept queues (docs/stopping.md).
 */
export interface OsSockets extends ListenerOpener {
  /**
   * Stops new handshakes on the TCP listener `fd`; false for a unix socket
   * (nothing can stop those). @throws when the kernel refuses the filter
   */
  stopHandshakes(fd: number): boolean;
  /** The fallback when the filter is refused: `listen(fd, 0)`. @throws when listen(2) fails */
  shrinkQueue(fd: number): void;
  /** Undoes {@link stopHandshakes} or {@link shrinkQueue}: handshakes with the full `backlog`. */
  resumeHandshakes(fd: number, backlog: number): void;
  /** Each listener's accept queue; those that cannot be read are left out. */
  queues(listeners: readonly SampledListener[]): ListenerQueue[];
}

/** The real {@link OsSockets}: the kernel's. */
export const kernelSockets: OsSockets = {
  ...kernelListeners,
  stopHandshakes,
  shrinkQueue,
  resumeHandshakes,
  queues: sampleQueues,
};

/** A timer from {@link Os.setTimer}: opaque to everyone but the {@link Os} that made it. */
export type TimerHandle = unknown;

/** What the executor asks of the operating system. */
export interface Os {
  /** Starts a worker through the exec shim. @throws when no process could be created */
  spawn(self: SelfInvocation, launch: WorkerLaunch): OsChild;
  /** Signals a process by pid (only for one known to be an unreaped child). */
  killPid(pid: number, signal: Deno.Signal): void;
  /** Reaps children the runtime does not own; returns the exits of the `watched` ones. */
  reapForeign(watched: ReadonlySet<number>): ReapedExit[];
  /** The listening sockets. */
  readonly sockets: OsSockets;
  /** The monotonic clock the core decides on, in ms. */
  now(): number;
  /** Calls `fire` once after `ms` (at most what `setTimeout` holds); returns a handle. */
  setTimer(fire: () => void, ms: number): TimerHandle;
  /** Cancels a timer from {@link Os.setTimer}; undefined is ignored. */
  clearTimer(handle: TimerHandle | undefined): void;
  /** The signals sent to the master, delivered as events. */
  readonly signals: OsSignals;
  /** One full garbage collection; false where V8 does not expose it (`--expose-gc`). */
  collectGarbage(): boolean;
  /** The C heap's free pages back to the kernel; false where the C library cannot. */
  trimHeap(): boolean;
}

/** The options of V8's `gc()` (exposed by `--expose-gc`). */
interface GcOptions {
  type: "major" | "minor";
  execution: "sync" | "async";
  flavor?: "regular" | "last-resort";
}

/** Where the master's signals come from: the process's own, or a fake's. */
export interface OsSignals {
  /** Delivers every master signal to `push` from now on. */
  install(push: (event: Event<never>) => void): void;
  /** Stops delivering them. */
  remove(): void;
}

/** The real operating system, through Deno; `registry` learns of every child started. */
export function denoOs(registry: ChildRegistry): Os {
  return {
    spawn: (self, launch) => registry.track(spawnWorker(self, launch)),
    killPid: (pid, signal) => Deno.kill(pid, signal),
    reapForeign: (watched) => reapForeignChildren(registry, watched),
    sockets: kernelSockets,
    now: () => performance.now(),
    setTimer: (fire, ms) => setTimeout(fire, ms),
    clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    signals: new SignalListeners(),
    collectGarbage: () => {
      // Exposed by `--expose-gc` (src/master/v8_flags.ts). "last-resort" is
      // V8's memory-reducing full collection, which also unmaps the pages it
      // frees: a plain gc() kept them (measured: 65 MB of anonymous memory
      // stayed after one, 6 MB after this).
      const gc = (globalThis as { gc?: (options: GcOptions) => void }).gc;
      gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
      return gc !== undefined;
    },
    trimHeap: releaseFreedMemory,
  };
}
