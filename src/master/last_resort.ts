/**
 * The master's last line of defence (docs/contract.md, "Security", "no promise in the master
 * rejects unhandled"): an error nobody caught — a promise rejected with no
 * handler, an exception thrown from a timer or a callback — is logged with
 * its stack and contained, and the event loop goes on. By default Deno ends
 * the process on either, which for the master would take every worker with
 * it.
 *
 * Invariants:
 * - This is a net, not a design: every known source catches its own errors;
 *   a line from here is a bug to fix, and says so.
 * - At most {@link MAX_LINES_PER_WINDOW} lines per {@link WINDOW_MS}: an error
 *   that repeats on every tick cannot flood the log; the next line after a
 *   quiet spell says how many were left out.
 * - Installed once per master process by the start-up checklist, removed by
 *   the function it returns.
 *
 * Part of the executor: it decides nothing; every decision is the core's
 * (src/core/), and this only carries one out or reports what happened.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";

/** The log budget of uncaught errors. */
export const MAX_LINES_PER_WINDOW = 10;
export const WINDOW_MS = 60_000;

/**
 * Log and contain uncaught errors and unhandled rejections from now on.
 *
 * @returns a function that removes the handlers again
 *
 * @example Usage
 * ```ts
 * import { getLog } from "../logging/log.ts";
 * import { containUncaughtErrors } from "./last_resort.ts";
 * const release = containUncaughtErrors(getLog());
 * // ... run the master ...
 * release();
 * ```
 */
export function containUncaughtErrors(log: Logger): () => void {
  let windowStart = -Infinity;
  let lines = 0;
  let dropped = 0;
  const report = (kind: string, error: unknown) => {
    const now = performance.now();
    if (now - windowStart >= WINDOW_MS) {
      windowStart = now;
      lines = 0;
    }
    if (lines >= MAX_LINES_PER_WINDOW) {
      dropped++;
      return;
    }
    lines++;
    const more = dropped > 0 ? ` (${dropped} more left out before this one)` : "";
    dropped = 0;
    // Logging must not throw from here: there is nothing further out to catch it.
    try {
      log.error(`${kind} (contained, the master goes on; this is a bug)${more}: {error}`, {
        event: "master.bug",
        error: describe(error),
      });
    } catch { /* nothing left to tell */ }
  };
  const onRejection = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    report("unhandled promise rejection", event.reason);
  };
  const onError = (event: ErrorEvent) => {
    event.preventDefault();
    report("uncaught exception", event.error ?? event.message);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  try {
    return typeof error === "string" ? error : JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
