/**
 * Environment variables of the master that must never reach a process it
 * starts (worker or hook): systemd's socket activation and notify variables
 * are for the master alone, and a child that saw them would act on them.
 *
 * @module
 */

/** The master's private variables; workers get their own values where they need them. */
export const PRIVATE_ENV = [
  "LISTEN_FDS",
  "LISTEN_PID",
  "LISTEN_FDNAMES",
  "NOTIFY_SOCKET",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
  "ARBITER_NOTIFY_STREAM",
];
