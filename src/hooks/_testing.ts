/**
 * Helpers for the hook tests: a real LogTape logger whose lines are kept in
 * memory, a complete config, and how to start the exec shim from a test
 * (where `Deno.mainModule` is the test file, not `main.ts`).
 *
 * @module
 */

import { configSchema } from "../config/schema.ts";
import { configure, getLogger, type Logger, type LogRecord, reset } from "@logtape/logtape";
import type { Config } from "../config/types.ts";
import { renderMessage } from "../logging/log.ts";
import { type SelfInvocation, selfInvocation } from "../spawn/self.ts";

/** The exec shim as the master would start it under `deno run main.ts`. */
export const SELF: SelfInvocation = selfInvocation(
  Deno.execPath(),
  new URL("../../main.ts", import.meta.url).href,
);

/** A logger that keeps what it is given. Dispose it to reset LogTape. */
export interface CapturedLog extends AsyncDisposable {
  log: Logger;
  records: LogRecord[];
  /** The rendered messages so far. */
  lines(): string[];
}

/** Configures LogTape with an in-memory sink for the category `["hooktest"]`. */
export async function captureLog(): Promise<CapturedLog> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record: LogRecord) => records.push(record) },
    loggers: [
      { category: ["hooktest"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  return {
    log: getLogger(["hooktest"]),
    records,
    lines: () => records.map(renderMessage),
    [Symbol.asyncDispose]: () => reset(),
  };
}

/** A complete config as `loadConfig` would produce it (the schema's defaults), with `overrides`. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  const defaults = configSchema.parse({}) as Omit<Config, "command" | "bind">;
  return { ...defaults, command: ["true"], bind: [], ...overrides } as Config;
}

/** Resolves with the text of `path` once it exists and `done(text)` holds. */
export async function waitForFile(
  path: string,
  done: (text: string) => boolean,
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    try {
      const text = await Deno.readTextFile(path);
      if (done(text)) return text;
    } catch { /* not there yet */ }
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
