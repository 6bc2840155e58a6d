/**
 * The vocabulary of the master loop: every input becomes an {@link Event} on
 * one queue, and every decision comes back as a list of {@link Effect}s for
 * the executor to carry out. Nothing else crosses between the two.
 *
 * Events arrive from: signal listeners, child `status` promises, the spawn
 * call itself, the single deadline timer, config reloads, worker notify
 * sockets, the control socket and the file watcher. A request that someone
 * waits on (control socket, `/livez` probe) carries a `reply` callback; the
 * core answers it with a `reply` effect, so what the caller hears is what the
 * core decided.
 *
 * @module
 */

import type { MemorySample } from "./memory.ts";
import type { LogEvent } from "./log_events.ts";
import type { SaturationSettings } from "./saturation_policy.ts";

/** Signals the master acts on. */
export type MasterSignal =
  | "SIGHUP"
  | "SIGTERM"
  | "SIGINT"
  | "SIGQUIT"
  | "SIGTTIN"
  | "SIGTTOU"
  | "SIGUSR1"
  | "SIGUSR2"
  | "SIGWINCH"
  | "SIGCHLD";

/** Signals the master sends to workers. */
export type WorkerSignal = "SIGTERM" | "SIGQUIT" | "SIGKILL" | "SIGUSR1" | "SIGABRT";

/** The answer to a request: what was done, or why it was refused. */
export type Reply = { ok: true; message: string } | { ok: false; error: string };

/** Where a {@link Reply} goes; the executor calls it when it applies the `reply` effect. */
export type ReplyTo = (reply: Reply) => void;

/** Actions that arrive as requests rather than signals. */
export type RequestAction = "reload" | "upgrade" | "stop" | "quick-stop";

/** An input to the master. `C` is the spawn context of a generation (opaque to the core). */
export type Event<C> =
  /** A signal to the master; `hasTerminal` says whether it has a controlling terminal. */
  | { type: "signal"; signal: MasterSignal; hasTerminal?: boolean }
  /** The process for worker `serial` was started. */
  | { type: "spawned"; serial: number; pid: number }
  /** The process for worker `serial` could not even be started. */
  | { type: "spawn-failed"; serial: number; error: string }
  /**
   * Worker `serial` exited (`signal` set when a signal ended it).
   * `lastStderr`: its last lines of stderr, when its spawn asked for them.
   */
  | { type: "exited"; serial: number; code: number; signal: string | null; lastStderr?: string[] }
  /** A sd_notify message from worker `serial`, split into fields. */
  | { type: "notify"; serial: number; fields: Record<string, string> }
  /** The deadline timer fired. */
  | { type: "tick" }
  /** A liveness probe (/livez): answered when the loop reaches it in the queue. */
  | { type: "probe"; reply: ReplyTo }
  /** A reload's config was loaded and its listeners opened. */
  | { type: "config-loaded"; settings: Settings; context: C }
  /** A reload's config was refused; the running one stays. */
  | { type: "config-failed"; error: string }
  /**
   * The same requests as HUP, USR2, TERM and INT from elsewhere (control
   * socket, file watcher); `source` names it in the log.
   */
  | { type: "request"; action: RequestAction; source: string; reply?: ReplyTo }
  /** A request to change the number of workers (control socket). */
  | { type: "scale"; workers: number; reply?: ReplyTo }
  /** The pre-upgrade check ended (or the exec failed): `error` unset means go ahead. */
  | { type: "upgrade-checked"; error?: string }
  /** Issue 15: the answer to `sample-queue`: connections waiting over all listeners. */
  | { type: "queue-sampled"; queued: number }
  /** The answer to `sample-memory`: the memory of the workers (each its process group's) that could be read. */
  | { type: "memory-sampled"; samples: MemorySample[] };

/** What the core needs to know of a config. Durations in milliseconds. */
export interface Settings {
  workers: number;
  gracefulTimeoutMs: number;
  bootTimeoutMs: number;
  ready: "spawn" | "notify";
  /** Watchdog deadline; 0 disables. */
  watchdogMs: number;
  /** Age at which a worker is recycled; 0 disables. */
  maxLifetimeMs: number;
  maxLifetimeJitterMs: number;
  /**
   * Workers beyond `workers` that may be alive (stopping ones included) while
   * a rollout or recycle runs; undefined starts a whole generation at once.
   */
  maxSurge?: number;
  /** Shown in logs: the worker argv[0]. */
  commandName: string;
  /** Issue 15: autoscaling and `max_worker_memory`; both off when unset. */
  saturation?: SaturationSettings;
  /** `worker_usr1`: "off" means workers never get USR1; unset is "send" (docs/contract.md, "Signals"). */
  workerUsr1?: "send" | "blocked" | "off";
}

/** Log levels the core uses. */
export type Level = "debug" | "info" | "warning" | "error";

/** An action for the executor. */
export type Effect<C> =
  | {
    type: "spawn";
    serial: number;
    slot: number;
    generation: number;
    context: C;
    /**
     * The slot's last tries failed to boot, the same way: keep this
     * worker's last lines of stderr (still copied to the master's stderr as
     * they come) and send them with its `exited` event, so "cannot boot" can
     * show them.
     */
    captureStderr?: boolean;
  }
  /** Signal worker `serial`; `reason` is set when this asks it to stop (hooks key on it). */
  | { type: "kill"; serial: number; signal: WorkerSignal; reason?: StopReason }
  /** The desired number of workers changed (the `nworkers_changed` hook). */
  | { type: "workers-changed"; from: number; to: number }
  /**
   * Log a line: `event` is its stable name (log_events.ts), `message` a
   * LogTape template over `props`; a line about a worker has `props.worker`.
   */
  | {
    type: "log";
    level: Level;
    event: LogEvent;
    message: string;
    props?: Record<string, unknown>;
  }
  /** Re-read the config file and answer with config-loaded or config-failed. */
  | { type: "load-config" }
  /**
   * The serving generation changed (a reload was accepted, or abandoned and
   * the previous one serves again): apply the master-level parts of its
   * config (logging, pidfile, hooks, file watcher).
   */
  | { type: "adopt-config"; context: C }
  /** Answer a request with what the core decided. */
  | { type: "reply"; to: ReplyTo; reply: Reply }
  | { type: "reopen-logs" }
  /** Every worker of `generation` is ready (first time only): systemd READY=1, when_ready. */
  | { type: "generation-ready"; generation: number }
  /** The master has begun to stop (systemd STOPPING=1, /readyz 503). */
  | { type: "stopping" }
  /** A reload ended without a new ready generation (refused or abandoned). */
  | { type: "reload-done" }
  /** Check that the new master would start (USR2); answer with upgrade-checked. */
  | { type: "check-upgrade" }
  /** Re-execute the master in place now, handing over workers and sockets. */
  | { type: "exec-upgrade"; generation: number }
  /** A generation has no workers left and is not current: its resources may go. */
  | { type: "retire-generation"; generation: number }
  /** The master is done: clean up (pidfile, sockets) and exit with `code`. */
  | { type: "exit"; code: number }
  /** Issue 15: read the listeners' accept queues; answer with `queue-sampled`. */
  | { type: "sample-queue" }
  /** Read these workers' memory (each its process group's); answer with `memory-sampled`. */
  | { type: "sample-memory"; workers: { serial: number; pid: number }[] };

/** Why the core asked a worker to stop; log text comes from {@link STOP_REASON_TEXT}. */
export type StopReason =
  | "master-stopping"
  | "master-quick-stop"
  | "scaled-down"
  | "replaced"
  | "max-age"
  | "reload-abandoned"
  | "boot-timeout"
  | "watchdog-timeout"
  | "worker-stopping"
  | "max-memory";

/** How each {@link StopReason} reads in the log. */
export const STOP_REASON_TEXT: Record<StopReason, string> = {
  "master-stopping": "the master is stopping",
  "master-quick-stop": "the master is stopping quickly",
  "scaled-down": "scaled down",
  "replaced": "replaced by a new generation",
  "max-age": "reached its maximum age",
  "reload-abandoned": "reload abandoned",
  "boot-timeout": "boot timeout",
  "watchdog-timeout": "timeout",
  "worker-stopping": "worker said STOPPING=1",
  "max-memory": "max_worker_memory",
};
