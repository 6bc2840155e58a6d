/**
 * The saturation keys of the config: `max_worker_memory` with
 * its window, and autoscaling's bounds. What the schema cannot say alone:
 * memory sizes with units become MiB, `workers_min ≤ workers_max`, and with
 * `autoscale = true` the bounds get their defaults and `workers` (the
 * starting count) is brought within them.
 *
 * Defaults (decided for operators coming from uWSGI's cheaper subsystem and
 * PM2): `workers_min` 1; `workers_max` twice the CPUs the master sees, and
 * never below `workers` — so turning autoscale on never lowers a count that
 * was chosen by hand.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";
import { keyPath, showValue } from "./_format.ts";
import { parseMemoryMib } from "./schema.ts";
import type { ConfigValues } from "./schema.ts";
import type { Config } from "./types.ts";

/** The saturation fields of a {@link Config}, plus the effective `workers`. */
export type SaturationConfig = Pick<
  Config,
  | "workers"
  | "max_worker_memory"
  | "max_worker_memory_window"
  | "autoscale"
  | "workers_min"
  | "workers_max"
  | "autoscale_interval"
  | "autoscale_quiet_period"
>;

/**
 * The saturation fields from validated values.
 *
 * @param v Values the schema accepted.
 * @param name How to name a key an error is about (the option or file it came from).
 * @param key How to name another key within the same message: the key, or
 *   the option when it came from the command line (never the file again).
 * @param cpus CPUs the master may use (for the `workers_max` default).
 * @throws {ConfigError} when `workers_min` is above `workers_max`.
 */
export function saturationConfig(
  v: ConfigValues,
  name: (path: readonly PropertyKey[]) => string,
  key: (path: readonly PropertyKey[]) => string = keyPath,
  cpus: number = navigator.hardwareConcurrency ?? 1,
): SaturationConfig {
  const out: SaturationConfig = {
    workers: v.workers,
    max_worker_memory: parseMemoryMib(v.max_worker_memory),
    max_worker_memory_window: v.max_worker_memory_window,
    autoscale: v.autoscale,
    workers_min: v.workers_min,
    workers_max: v.workers_max,
    autoscale_interval: v.autoscale_interval,
    autoscale_quiet_period: v.autoscale_quiet_period,
  };
  if (v.autoscale) {
    out.workers_min ??= 1;
    out.workers_max ??= Math.max(v.workers, out.workers_min, 2 * Math.max(1, cpus));
  }
  if (out.workers_min !== undefined && out.workers_max !== undefined) {
    if (out.workers_min > out.workers_max) {
      throw new ConfigError(
        `${name(["workers_min"])}: ${showValue(out.workers_min)} is above ` +
          `${key(["workers_max"])} (${showValue(out.workers_max)}); expected ` +
          `${key(["workers_min"])} ≤ ${key(["workers_max"])}`,
      );
    }
    if (v.autoscale) {
      out.workers = Math.min(out.workers_max, Math.max(out.workers_min, out.workers));
    }
  }
  return out;
}
