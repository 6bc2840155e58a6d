/**
 * Helpers for integration tests that drive the real master (`main.ts`) as a
 * subprocess: start it, read its output as it comes, wait for log lines,
 * children and HTTP answers (events, never fixed sleeps), put load on it, and
 * never leave a process behind. One import for the tests; each concern
 * lives in its own file:
 * - `_arbiter.ts`: the master as a subprocess ({@link startArbiter}, {@link ArbiterProcess});
 * - `_proc.ts`: where arbiter is, and processes read from /proc;
 * - `_wait.ts`: {@link waitFor};
 * - `_http.ts`: one request, waiting for a URL, a free port;
 * - `_load.ts`: {@link LoadGenerator};
 * - `_log_events.ts`: the master's log events ({@link logEvent}).
 *
 * @module
 */

export * from "./_arbiter.ts";
export * from "./_http.ts";
export * from "./_load.ts";
export * from "./_log_events.ts";
export * from "./_proc.ts";
export { waitFor, type WaitOptions } from "./_wait.ts";
