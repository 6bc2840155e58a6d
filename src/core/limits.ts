/**
 * The ranges of every number the config, the command line and the control
 * API accept (docs/contract.md, "Security": every number has a documented range). One constant per
 * kind of number, shared by every place that takes one, so `workers` in the
 * file, `-w` and `arbiter ctl scale N` cannot disagree.
 *
 * Why these values:
 * - They keep every accepted value working, not just parsing: a count fits
 *   the arrays the master keeps, a backlog fits listen(2)'s C `int`, an id
 *   fits `uid_t`/`gid_t`, and a duration stays an exact integer of
 *   microseconds (`WATCHDOG_USEC`) and is timed by chained timers where it
 *   exceeds what one `setTimeout` can hold ({@link MAX_TIMER_MS}).
 * - They are far above any sensible setting, so they only catch mistakes
 *   (`workers = 1e9`, `timeout = 1e300`).
 *
 * @module
 */

/** The most workers `workers`, `-w` and `arbiter ctl scale N` may ask for. */
export const MAX_WORKERS = 10_000;

/** The largest `backlog`: listen(2) takes a C `int` (the kernel then caps it at somaxconn). */
export const MAX_BACKLOG = 2_147_483_647;

/** The longest duration in seconds any key accepts: 365 days. */
export const MAX_SECONDS = 365 * 24 * 3600;

/** The largest uid or gid: `uid_t` is 32 bits and `(uid_t)-1` means "unchanged" to setuid(2). */
export const MAX_ID = 4_294_967_294;

/** The largest fd an `fd://N` bind may name: fds are C `int`s. */
export const MAX_FD = 2_147_483_647;

/**
 * The longest delay one `setTimeout` can hold (2^31 − 1 ms, about 24.8
 * days); a longer one fires after 1 ms. Longer waits are chained.
 */
export const MAX_TIMER_MS = 2_147_483_647;
