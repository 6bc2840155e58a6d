/**
 * The records the core keeps (workers, slots, generations, counters) and
 * the constants of its lifecycle (settle, back-off, abandon). Declared here,
 * beside the state that holds them (state.ts), so the state's file stays
 * about the steps and each record has one declaration.
 *
 * @module
 */

import type { ExitReason } from "./exit_reasons.ts";
import type { Settings, StopReason } from "./events.ts";

/** How long a worker must run without exiting to count as ready with `ready = "spawn"`. */
export const SETTLE_MS = 1000;
/**
 * How long workers must have neither come nor gone before the master
 * collects its garbage and then gives its freed C heap back: once per
 * rollout, not per worker (docs/decisions.md).
 */
export const RELEASE_MEMORY_AFTER_MS = 20_000;
/**
 * The longest workers' churn goes on without a collection: reloads or
 * crashes that never leave 20 s of quiet still get one at least this often,
 * so the garbage of a long storm of them is bounded too.
 */
export const RELEASE_MEMORY_AT_MOST_MS = 60_000;
/**
 * From the collection to the trim of the C heap: V8 frees the buffers of
 * dead objects on a background thread after the collection returns, so a
 * trim at once can miss them (seen after 1,000 reloads: 6 MB kept).
 */
export const TRIM_AFTER_COLLECT_MS = 1000;
/** Grace between the quick stop signal or SIGABRT (watchdog) and SIGKILL. */
export const QUICK_GRACE_MS = 1000;
/** First boot back-off step; it doubles per consecutive failure. */
export const BACKOFF_BASE_MS = 100;
/** Largest boot back-off. */
export const BACKOFF_MAX_MS = 10_000;
/** A worker that stayed ready this long clears its slot's failure count. */
export const STABLE_MS = 5000;
/** Boot failures of a new generation, while an older one serves, that abandon a reload. */
export const ABANDON_AFTER_FAILURES = 3;
/** Boot failures of a slot in a row, all ending the same way, that say "this cannot boot". */
export const CANNOT_BOOT_AFTER = 3;

/** A worker as the core sees it. */
export interface WorkerRecord {
  readonly serial: number;
  readonly slot: number;
  readonly generation: number;
  pid?: number;
  state: "booting" | "ready" | "stopping";
  spawnedAt: number;
  readyAt?: number;
  /** Why it is stopping (set with state "stopping"). */
  stopReason?: StopReason;
  /** When to SIGKILL it if it is still alive. */
  killAt?: number;
  killSent: boolean;
  /** Last `WATCHDOG=1`; the watchdog is armed from the first one on. */
  lastPing?: number;
  /** Age limit reached: retired once a replacement is ready. */
  superseded: boolean;
  /** When it reaches its maximum age (when recycling is on). */
  recycleAt?: number;
  /** `ctl restart ID` superseded it: its stop reason is "restarted". */
  restartRequested?: boolean;
  /** Last `STATUS=` it sent. */
  status?: string;
  /** A USR1 came while it was booting: it gets it once ready. */
  usr1Pending?: boolean;
  /** Saturation (docs/saturation.md): its RSS stayed above `max_worker_memory`; recycled before any age recycle. */
  memoryDue?: boolean;
  /** Time the master was not running while this worker booted: added to its boot deadline. */
  bootCreditMs?: number;
  /**
   * Taken over from the image before an in-place upgrade: not a child the
   * runtime watches, so its exit is learnt by reaping (polled while it lives).
   */
  inherited?: boolean;
}

/** Per-slot history. */
export interface SlotRecord {
  bootFailures: number;
  retryAt: number;
  restarts: number;
  lastExit?: string;
  /** How the last failed boots ended, while they all ended the same way. */
  bootFailure?: { what: string; inARow: number; lastStderr?: string[] };
}

/** A slot whose worker failed to boot the same way every time, lately. */
export interface FailingSlot {
  slot: number;
  /** How each try ended (`exit code 1`, `killed by SIGSEGV`, `spawn failed`). */
  what: string;
  /** Tries in a row that ended so. */
  tries: number;
  /** The last lines of stderr of the last try whose stderr was kept (empty when none). */
  lastStderr: string[];
}

/** Counters for `/metrics`, kept by the core as it judges each exit. */
export interface CoreCounters {
  /** Workers replaced after dying unasked or failing to boot. */
  restarts: number;
  /** Workers that ended before becoming ready, plus spawns that failed. */
  bootFailures: number;
  /** Workers stopped by the watchdog. */
  timeouts: number;
  /** Reloads that started a new generation. */
  reloads: number;
  /** Exited workers by reason. */
  exits: Partial<Record<ExitReason, number>>;
}

/** What the master is doing as a whole. */
export type Phase =
  | { kind: "running" }
  | { kind: "stopping"; quick: boolean; code: number };

/** One generation: the workers started from one config. */
export interface GenerationRecord<C> {
  number: number;
  settings: Settings;
  context: C;
  bootFailures: number;
  /** Whether "generation N is ready" was announced. */
  readyAnnounced: boolean;
}
