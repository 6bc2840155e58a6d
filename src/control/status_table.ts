/**
 * `arbiter ctl status` for people: the status report as a table.
 *
 * @module
 */

import { formatBytes } from "../observe/proc.ts";
import { formatDuration, formatQueues, formatTable } from "./_table.ts";
import type { StatusReport } from "./api.ts";

/**
 * A status report as `arbiter ctl status` prints it for people. The
 * saturation parts appear only when the master reports them:
 * the accept queue per listener, the autoscaling bounds, and RSS and CPU
 * columns like `pm2 list`.
 *
 * @example Output
 * ```text
 * master   pid 4242, arbiter 0.1.0, up 2h05m, running
 * config   /app/app.toml
 * workers  4 desired (autoscale 2..16), 4 ready, generation 2
 * queue    127.0.0.1:8000 0/2048
 *
 * ID  PID   GEN  STATE  AGE    RSS       CPU    RESTARTS  LAST EXIT  STATUS
 * 0   4250  2    ready  3m12s  52.4 MiB  12.5%  0         -          -
 * ```
 */
export function formatStatus(report: StatusReport): string {
  const m = report.master;
  const count = (state: string) => report.workers.filter((w) => w.state === state).length;
  const states = ["ready", "booting", "stopping"]
    .filter((s) => s === "ready" || count(s) > 0)
    .map((s) => `${count(s)} ${s}`);
  const flags = [m.phase, ...(m.reloading ? ["reloading"] : [])].join(", ");
  const bounds = m.autoscale ? ` (autoscale ${m.autoscale.min}..${m.autoscale.max})` : "";
  const lines = [
    `master   pid ${m.pid}, arbiter ${m.version}, up ${formatDuration(m.uptime_s)}, ${flags}`,
    `config   ${m.config_file ?? "(none: command line only)"}`,
    `workers  ${m.workers_desired} desired${bounds}, ${
      states.join(", ")
    }, generation ${m.generation}`,
    ...(m.cannot_boot ?? []).flatMap((f) => [
      `failing  worker ${f.id} cannot boot: ${f.ended_with} before ready on each of the last ${f.tries} tries`,
      ...(f.last_stderr ?? []).map((line) => `         stderr: ${line}`),
    ]),
  ];
  if (m.rollout) {
    const r = m.rollout;
    const to = r.generation === undefined ? "" : ` to generation ${r.generation}`;
    const why = r.reason === undefined ? "" : `: ${r.reason}`;
    lines.push(`rollout  ${r.kind} (attempt ${r.attempt})${to}: ${r.outcome}${why}`);
  }
  if (m.listeners !== undefined && m.listeners.length > 0) {
    lines.push(`queue    ${formatQueues(m.listeners)}`);
  }
  if (typeof m.max_worker_memory_bytes === "number") {
    lines.push(`memory   workers above ${formatBytes(m.max_worker_memory_bytes)} are recycled`);
  }
  lines.push("");
  const resources = report.workers.some((w) =>
    w.memory_bytes !== undefined || w.cpu_s !== undefined
  );
  const header = [
    "ID",
    "PID",
    "GEN",
    "STATE",
    "AGE",
    ...(resources ? ["MEM", "PROCS", "CPU"] : []),
    "RESTARTS",
    "LAST EXIT",
    "STATUS",
  ];
  const rows = report.workers.map((w) => [
    String(w.id),
    w.pid === null ? "-" : String(w.pid),
    String(w.generation),
    w.stop_reason ? `${w.state} (${w.stop_reason})` : w.state,
    formatDuration(w.age_s),
    ...(resources
      ? [formatMemory(w.memory_bytes), String(w.processes ?? "-"), formatCpu(w.cpu_percent)]
      : []),
    String(w.restarts),
    w.last_exit ?? "-",
    w.status ?? "-",
  ]);
  if (rows.length === 0) return [...lines, "(no workers)"].join("\n") + "\n";
  return [...lines, ...formatTable(header, rows)].map((l) => l.trimEnd()).join("\n") + "\n";
}

function formatMemory(bytes: number | null | undefined): string {
  return typeof bytes === "number" ? formatBytes(bytes) : "-";
}

function formatCpu(percent: number | null | undefined): string {
  return typeof percent === "number" ? `${percent.toFixed(1)}%` : "-";
}
