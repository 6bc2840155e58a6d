/**
 * The Prometheus text exposition format 0.0.4 of a {@link MetricsSnapshot}
 * (docs/operations.md, "Metrics"): the master's own families here, the
 * optional ones (resilience, saturation, worker info, build, process) in
 * metrics_families.ts. Pure formatting.
 *
 * Invariants:
 * - Every family has one `# HELP` and one `# TYPE` line before its samples.
 * - Every label value of a labelled family with a fixed set of values is
 *   present (0 when nothing happened), so `rate()` and alerts work from the
 *   first scrape; a family whose data the master could not read is left
 *   out rather than reported as a false 0.
 * - No two samples of a family carry the same labels.
 *
 * @module
 */

import { EXIT_REASONS, type ExitReason } from "../core/exit_reasons.ts";
import type { MetricsSnapshot } from "./metrics_snapshot.ts";
import {
  buildFamilies,
  processFamilies,
  resilienceFamilies,
  saturationFamilies,
  workerInfoFamilies,
} from "./metrics_families.ts";

/** One metric family as rendered: its name, type, help text and samples. */
export interface Family {
  name: string;
  type: "gauge" | "counter";
  help: string;
  samples: { labels?: Record<string, string>; value: number }[];
}

/** A family of one unlabelled sample: most of the master's own series. */
export function single(name: string, type: Family["type"], help: string, value: number): Family {
  return { name, type, help, samples: [{ value }] };
}

/**
 * Render a snapshot in the Prometheus text exposition format 0.0.4.
 *
 * @example Usage
 * ```ts
 * import { formatPrometheus } from "./prometheus.ts";
 * import type { MetricsSnapshot } from "./metrics_snapshot.ts";
 * declare const snapshot: MetricsSnapshot; // with 4 ready workers
 * formatPrometheus(snapshot).includes('arbiter_workers{state="ready"} 4'); // true
 * ```
 */
export function formatPrometheus(s: MetricsSnapshot): string {
  const families: Family[] = [...masterFamilies(s)];
  if (s.notifyDropped !== undefined) {
    families.push({
      name: "arbiter_notify_dropped_total",
      type: "counter",
      help: "Notify messages dropped: not sent by the worker the socket belongs to.",
      samples: [{ value: s.notifyDropped }],
    });
  }
  if (s.resilience) families.push(...resilienceFamilies(s.resilience));
  families.push(...saturationFamilies(s));
  if (s.workerInfo) families.push(...workerInfoFamilies(s.workerInfo));
  if (s.build) families.push(...buildFamilies(s.build));
  if (s.process) families.push(...processFamilies(s.process));
  return families.map(renderFamily).join("");
}

function masterFamilies(s: MetricsSnapshot): Family[] {
  return [
    {
      name: "arbiter_workers",
      type: "gauge",
      help: "Live worker processes by state.",
      samples: (["booting", "ready", "stopping"] as const).map((state) => ({
        labels: { state },
        value: s.workers[state],
      })),
    },
    single(
      "arbiter_workers_desired",
      "gauge",
      "Number of workers the master aims to run.",
      s.workersDesired,
    ),
    single(
      "arbiter_worker_restarts_total",
      "counter",
      "Workers replaced after dying unasked or failing to boot.",
      s.restarts,
    ),
    single(
      "arbiter_worker_boot_failures_total",
      "counter",
      "Workers that ended before becoming ready, and spawns that failed.",
      s.bootFailures,
    ),
    single(
      "arbiter_worker_timeouts_total",
      "counter",
      "Workers stopped by the watchdog (no WATCHDOG=1 within timeout).",
      s.timeouts,
    ),
    single(
      "arbiter_reloads_total",
      "counter",
      "Reloads that started a new generation of workers.",
      s.reloads,
    ),
    {
      name: "arbiter_worker_exits_total",
      type: "counter",
      help: "Exited workers by reason.",
      samples: [
        ...EXIT_REASONS,
        ...Object.keys(s.exits).filter((r) => !(EXIT_REASONS as readonly string[]).includes(r)),
      ].map((reason) => ({
        labels: { reason },
        value: s.exits[reason as ExitReason] ?? 0,
      })),
    },
    single(
      "arbiter_master_uptime_seconds",
      "gauge",
      "Seconds since the master started.",
      s.uptimeSeconds,
    ),
    single(
      "arbiter_generation",
      "gauge",
      "The current generation of workers (1 at start, one more per reload).",
      s.generation,
    ),
  ];
}

function renderFamily(f: Family): string {
  let out = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
  for (const sample of f.samples) {
    const labels = sample.labels === undefined
      ? ""
      : `{${Object.entries(sample.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
    out += `${f.name}${labels} ${formatValue(sample.value)}\n`;
  }
  return out;
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabel(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  if (Number.isInteger(value)) return String(value);
  return String(Math.round(value * 1000) / 1000);
}
