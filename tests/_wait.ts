/**
 * Waiting in integration tests: poll a probe until it answers, with a
 * timeout that says what was awaited. Part of the integration-test harness
 * (re-exported by tests/_harness.ts).
 *
 * @module
 */

/** How long the harness's waits last unless told (15 s). */
export const DEFAULT_TIMEOUT_MS = 15_000;

/** Options of the waiting helpers. */
export interface WaitOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Poll interval (default 20 ms). */
  intervalMs?: number;
  /** Said in the error on timeout. */
  message?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Poll `probe` every ~20 ms until it returns something other than
 * `undefined`/`false`, and return that. Rejects on timeout with `message`
 * (and the last error `probe` threw, if any).
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= deadline) {
      const why = lastError === undefined ? "" : ` (last error: ${errText(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms: ${opts.message ?? "waitFor"}${why}`);
    }
    await sleep(opts.intervalMs ?? 20);
  }
}

/** An error as one line: its name, message and the message of its cause. */
export function errText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
}
