/**
 * The options of `arbiter ctl top`, kept out of cli.ts: checked
 * here, and refused for every other request.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** `ctl top --interval S -n N`: checked here, refused for other requests. */
export function parseTopOptions(
  verb: string,
  values: { interval?: string; iterations?: string },
): { interval?: number; iterations?: number } {
  if (verb !== "top") {
    const given = values.interval !== undefined
      ? "--interval"
      : values.iterations !== undefined
      ? "-n/--iterations"
      : undefined;
    if (given) throw new ConfigError(`ctl ${verb}: ${given} applies only to \`ctl top\``);
    return {};
  }
  let interval: number | undefined;
  if (values.interval !== undefined) {
    interval = /^\d+(\.\d+)?$/.test(values.interval) ? Number(values.interval) : NaN;
    if (!(interval >= 0.2 && interval <= 3600)) {
      throw new ConfigError(
        `ctl top --interval: expected seconds from 0.2 to 3600, got ${
          JSON.stringify(values.interval)
        }`,
      );
    }
  }
  let iterations: number | undefined;
  if (values.iterations !== undefined) {
    iterations = /^\d+$/.test(values.iterations) ? Number(values.iterations) : NaN;
    if (!Number.isSafeInteger(iterations) || iterations < 1) {
      throw new ConfigError(
        `ctl top -n: expected a number of refreshes ≥ 1, got ${JSON.stringify(values.iterations)}`,
      );
    }
  }
  return { interval, iterations };
}
