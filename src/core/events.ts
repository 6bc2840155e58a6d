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
import type { RolloutRecord } from "./rollout.ts";

/**
 * Signals the master acts on: the one list the executor listens for and the
 * type the core's signal table is keyed by, so neither can miss one.
 */
export const MASTER_SIGNALS = [
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
] as const;

/** A signal the master acts on. */
export type MasterSignal = typeof MASTER_SIGNALS[number];

/**
 * Signals `arbiter ctl signal` may pass to workers (docs/operations.md,
 * "Signalling workers"). Not KILL, STOP or CONT: KILL skips a worker's own
 * shutdown (`ctl restart ID` replaces a stuck one, new worker first); STOP
 * freezes a worker that still holds its share of the accept queue, and the
 * master would then kill it as hung; CONT only undoes STOP.
 */
export const OPERATOR_SIGNALS = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGTERM",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
  "SIGTTIN",
  "SIGTTOU",
] as const;

/** A signal `arbiter ctl signal` may send. */
export type OperatorSignal = typeof OPERATOR_SIGNALS[number];

/** Signals the master sends to workers. */
export type WorkerSignal =
  | "SIGTERM"
  | "SIGINT"
  | "SIGQUIT"
  | "SIGKILL"
  | "SIGUSR1"
  | "SIGABRT";

/** What workers may get on a quick stop (`quick_stop_signal`). */
export type QuickStopSignal = "SIGINT" | "SIGQUIT" | "SIGTERM";

/**
 * The rollout a reload or upgrade request started (or will start, when
 * queued): `ctl reload --wait` follows its outcome in the status. An
 * upgrade names the generation the new master image will start.
 */
export interface RolloutRef {
  attempt: number;
  kind: "reload" | "upgrade";
  generation?: number;
}

/** The answer to a request: what was done, or why it was refused. */
export type Reply =
  | { ok: true; message: string; rollout?: RolloutRef }
  | { ok: false; error: string };

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
  /** Listeners that stopped listening were replaced by fresh sockets (the current generation's). */
  | { type: "listeners-restored"; addresses: string[] }
  /**
   * The loop did not run from `since` until now (its timer fired late): the
   * master was paused, throttled or blocked. Sent first, then the notify
   * messages that waited meanwhile, then the event that woke the loop.
   */
  | { type: "stalled"; since: number }
  /** A liveness probe (/livez): answered when the loop reaches it in the queue. */
  | { type: "probe"; reply: ReplyTo }
  /** A reload's config was loaded and its listeners opened. */
  | { type: "config-loaded"; settings: Settings; context: C }
  /** The `on_reload` hook ran for `context` (a `vet-reload` effect): `ok` false vetoes it. */
  | { type: "reload-vetted"; ok: boolean; context: C }
  /** A reload's config was refused; the running one stays. */
  | { type: "config-failed"; error: string }
  /**
   * The same requests as HUP, USR2, TERM and INT from elsewhere (control
   * socket, file watcher); `source` names it in the log.
   */
  | { type: "request"; action: RequestAction; source: string; reply?: ReplyTo }
  /**
   * A request to change the number of workers (control socket): to
   * `workers`, or by `workers` (negative: fewer) when `relative`.
   */
  | { type: "scale"; workers: number; relative?: boolean; reply?: ReplyTo }
  /** `ctl restart ID`: replace slot `slot`'s worker, new one first. */
  | { type: "restart"; slot: number; reply?: ReplyTo }
  /** `ctl signal SIG [ID]`: pass `signal` (checked by the core) to the workers, or to one slot's. */
  | { type: "signal-workers"; signal: string; slot?: number; reply?: ReplyTo }
  /** The pre-upgrade check ended (or the exec failed): `error` unset means go ahead. */
  | { type: "upgrade-checked"; error?: string }
  /** Saturation (docs/saturation.md): the answer to `sample-queue`: connections waiting over all listeners. */
  | { type: "queue-sampled"; queued: number }
  /** The answer to `sample-memory`: the memory of the workers (each its process group's) that could be read. */
  | { type: "memory-sampled"; samples: MemorySample[] }
  /** The answer to `sample-drain`: connections still waiting in every listener's accept queue. */
  | { type: "drain-sampled"; queued: number }
  /** The answer to `sweep-group`: how many processes the group held (0: empty, or not ours). */
  | { type: "group-swept"; pgid: number; members: number };

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
  /** Saturation (docs/saturation.md): autoscaling and `max_worker_memory`; both off when unset. */
  saturation?: SaturationSettings;
  /** An `on_reload` hook is configured: it may veto this config before it serves. */
  reloadVeto?: boolean;
  /** `worker_usr1`: "off" means workers never get USR1; unset is "send" (docs/contract.md, "Signals"). */
  workerUsr1?: "send" | "blocked" | "off";
  /** `shutdown_delay`: on TERM, how long workers go on serving while unready; unset is 0. */
  shutdownDelayMs?: number;
  /** `quick_stop_signal`; unset is SIGINT. */
  quickStopSignal?: QuickStopSignal;
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
  /**
   * Signal worker `serial`; `reason` is set when this asks it to stop.
   * `group`: to its whole process group, not only the worker.
   */
  | { type: "kill"; serial: number; signal: WorkerSignal; reason?: StopReason; group?: boolean }
  /** `ctl signal`: send `signal` to worker `serial`'s process group (the worker alone before it has one). */
  | { type: "signal-worker"; serial: number; signal: OperatorSignal; group: true }
  /**
   * Signal what is left of a gone worker's process group `pgid` (no signal:
   * only count it), if it is provably ours; answer with `group-swept`.
   */
  | { type: "sweep-group"; pgid: number; signal?: "SIGTERM" | "SIGKILL" }
  /** Stop new handshakes on every listener; the queued connections stay acceptable. */
  | { type: "close-handshakes" }
  /** Read how many connections wait in the listeners' accept queues; answer with `drain-sampled`. */
  | { type: "sample-drain" }
  /**
   * The core has judged worker `serial`'s end: the executor drops its process
   * record (and notify endpoint). `exited` is set when it was a process that
   * exited: the `post_exit` hook's context.
   */
  | { type: "worker-gone"; serial: number; exited?: WorkerExit }
  /** Worker `worker` ran out of time (`hook` names which): the `worker_timeout` hook. */
  | { type: "worker-timed-out"; hook: TimeoutHook; worker: WorkerIdentity }
  /** systemd asked for watchdog pings and one is due: `WATCHDOG=1`. */
  | { type: "ping-service-manager" }
  /**
   * Reap children `Deno.Command` does not own (a SIGCHLD came, or inherited
   * workers are due a poll); inherited workers' exits come back as `exited`.
   */
  | { type: "reap-children" }
  /** One full garbage collection (workers came or went, then quiet); `trim-heap` follows. */
  | { type: "collect-garbage" }
  /** Give the master's freed C heap back to the kernel, after `collect-garbage`. */
  | { type: "trim-heap" }
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
   * Run the `on_reload` hook for the loaded `context` (with the worker
   * counts it is told); answer with `reload-vetted`.
   */
  | { type: "vet-reload"; context: C; oldWorkers: number; newWorkers: number }
  /** Close the listeners that neither the serving generation nor a live worker holds. */
  | { type: "release-listeners" }
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
  /** A reload or upgrade ended: done, abandoned or refused (also in the snapshot's `rollout`). */
  | { type: "rollout-ended"; rollout: RolloutRecord }
  /** Check that the new master would start (USR2); answer with upgrade-checked. */
  | { type: "check-upgrade" }
  /** Re-execute the master in place now, handing over workers and sockets. */
  | { type: "exec-upgrade"; generation: number }
  /** A generation has no workers left and is not current: its resources may go. */
  | { type: "retire-generation"; generation: number }
  /** The master is done: clean up (pidfile, sockets) and exit with `code`. */
  | { type: "exit"; code: number }
  /** Saturation (docs/saturation.md): read the listeners' accept queues; answer with `queue-sampled`. */
  | { type: "sample-queue" }
  /** Read these workers' memory (each its process group's); answer with `memory-sampled`. */
  | { type: "sample-memory"; workers: { serial: number; pid: number }[] };

/** Which worker: its slot (`ARBITER_WORKER_ID`), pid and generation. */
export interface WorkerIdentity {
  slot: number;
  pid?: number;
  generation: number;
}

/** A worker process that exited with `code`, or by `signal`. */
export interface WorkerExit extends WorkerIdentity {
  code: number;
  signal: string | null;
}

/** The `ARBITER_EVENT` of a `worker_timeout` hook run: which deadline ran out. */
export type TimeoutHook = "boot_timeout" | "worker_timeout";

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
  | "max-memory"
  | "restarted";

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
  "restarted": "restarted on request",
};
