/**
 * Why a worker's life ended, as the core judges it (exits.ts) and as
 * `/metrics` labels it (`arbiter_worker_exits_total{reason}`): one list, so
 * a new reason is declared once.
 *
 * @module
 */

/** Why workers exited, the values of the `reason` label of `arbiter_worker_exits_total`. */
export const EXIT_REASONS = [
  /** Asked to stop (reload, scale down, stop, recycle) and left within its grace. */
  "stopped",
  /** Asked to stop, but still there after its grace: SIGKILLed. */
  "killed_after_grace",
  /** Exited with code 0 on its own while ready (it chose to recycle itself). */
  "exited",
  /** Exited with a non-zero code on its own while ready. */
  "error",
  /** Killed by a signal it was not sent by the master (SIGKILL has its own reason). */
  "signal",
  /** Killed by a SIGKILL the master did not send ("perhaps out of memory?"). */
  "sigkill",
  /** Stopped by the watchdog: no `WATCHDOG=1` within `timeout`. */
  "timeout",
  /** Ended before it was ready (including a boot timeout). */
  "boot_failure",
  /** Replaced because its RSS stayed above `max_worker_memory`. */
  "memory",
] as const;

/** One of {@link EXIT_REASONS}. */
export type ExitReason = typeof EXIT_REASONS[number];
