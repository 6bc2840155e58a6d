/**
 * `arbiter ctl top`: a live view of the master for people who
 * would rather watch than query, like `pm2 monit` or `top`. It asks the
 * control socket for the status JSON every interval and shows it:
 *
 * - on a terminal, as a table redrawn in place (the screen is cleared with
 *   plain ANSI `ESC[H ESC[2J`, nothing else is assumed of the terminal);
 * - piped, as plain lines, one for the master and one per worker per
 *   refresh, each starting with the time, so `grep`, `awk` and log files
 *   can use them.
 *
 * CPU is computed here from the workers' CPU seconds between two refreshes
 * (by pid), so what is shown is the use during the last interval; the
 * master's own `cpu_percent` is shown until a second sample exists.
 *
 * Invariants: read-only (it only sends `GET /v1/status`); the renderers are
 * pure functions of two reports and the time between them.
 *
 * @module
 */

import { formatBytes } from "../observe/proc.ts";
import type { StatusReport } from "./api.ts";
import { formatDuration, formatQueues, formatTable } from "./_table.ts";

/** One status report and when it was received (monotonic ms). */
export interface TopSample {
  report: StatusReport;
  at: number;
}

/** CPU use per pid between two samples, in percent of one core; falls back to the master's. */
export function cpuPercents(current: TopSample, previous?: TopSample): Map<number, number | null> {
  const out = new Map<number, number | null>();
  const before = new Map<number, number>();
  for (const w of previous?.report.workers ?? []) {
    if (w.pid !== null && typeof w.cpu_s === "number") before.set(w.pid, w.cpu_s);
  }
  const elapsed = previous ? (current.at - previous.at) / 1000 : 0;
  for (const w of current.report.workers) {
    if (w.pid === null) continue;
    const then = before.get(w.pid);
    if (elapsed > 0 && then !== undefined && typeof w.cpu_s === "number" && w.cpu_s >= then) {
      out.set(w.pid, Math.round((1000 * (w.cpu_s - then)) / elapsed) / 10);
    } else out.set(w.pid, typeof w.cpu_percent === "number" ? w.cpu_percent : null);
  }
  return out;
}

/** The screen of a terminal: a header, the queue, then a table of workers. */
export function renderTopScreen(current: TopSample, previous?: TopSample, clock?: Date): string {
  const r = current.report;
  const m = r.master;
  const cpu = cpuPercents(current, previous);
  const ready = r.workers.filter((w) => w.state === "ready").length;
  const memory = r.workers.reduce((sum, w) => sum + (w.memory_bytes ?? 0), 0);
  const source = r.workers.some((w) => w.memory_source === "rss") ? "RSS" : "PSS";
  const bounds = m.autoscale ? ` (autoscale ${m.autoscale.min}..${m.autoscale.max})` : "";
  const time = (clock ?? new Date()).toISOString().slice(11, 19);
  const lines = [
    `arbiter top  ${time}  master pid ${m.pid}, up ${formatDuration(m.uptime_s)}, ${m.phase}` +
    (m.reloading ? ", reloading" : ""),
    `workers  ${ready}/${m.workers_desired} ready${bounds}, generation ${m.generation}, ` +
    `memory ${formatBytes(memory)} (${source})`,
    `queue    ${m.listeners?.length ? formatQueues(m.listeners) : "(not reported)"}`,
    "",
  ];
  const header = ["ID", "PID", "GEN", "STATE", "AGE", "MEM", "PROCS", "CPU", "RESTARTS", "STATUS"];
  const rows = r.workers.map((w) => {
    const percent = w.pid === null ? null : cpu.get(w.pid) ?? null;
    return [
      String(w.id),
      w.pid === null ? "-" : String(w.pid),
      String(w.generation),
      w.stop_reason ? `${w.state} (${w.stop_reason})` : w.state,
      formatDuration(w.age_s),
      typeof w.memory_bytes === "number" ? formatBytes(w.memory_bytes) : "-",
      String(w.processes ?? "-"),
      percent === null ? "-" : `${percent.toFixed(1)}%`,
      String(w.restarts),
      w.status ?? "-",
    ];
  });
  const table = rows.length === 0 ? ["(no workers)"] : formatTable(header, rows);
  return [...lines, ...table].map((l) => l.trimEnd()).join("\n") + "\n";
}

/** Plain lines for a pipe: `TIME master ...` then `TIME worker id=... ` per worker. */
export function renderTopLines(current: TopSample, previous?: TopSample, clock?: Date): string {
  const r = current.report;
  const m = r.master;
  const cpu = cpuPercents(current, previous);
  const time = (clock ?? new Date()).toISOString();
  const queue = (m.listeners ?? [])
    .map((l) => ` queue=${l.address}:${l.queue_length}/${l.queue_capacity}`)
    .join("");
  const ready = r.workers.filter((w) => w.state === "ready").length;
  const lines = [
    `${time} master pid=${m.pid} phase=${m.phase} desired=${m.workers_desired} ready=${ready} ` +
    `generation=${m.generation}${queue}`,
  ];
  for (const w of r.workers) {
    const percent = w.pid === null ? null : cpu.get(w.pid) ?? null;
    lines.push(
      `${time} worker id=${w.id} pid=${w.pid ?? "-"} generation=${w.generation} ` +
        `state=${w.state} age_s=${w.age_s} ` +
        `memory_bytes=${typeof w.memory_bytes === "number" ? w.memory_bytes : "-"} ` +
        `processes=${w.processes ?? "-"} ` +
        `cpu_percent=${percent === null ? "-" : percent} restarts=${w.restarts}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** What {@link runTop} needs from its caller. */
export interface TopIo {
  /** One status report from the master; throws when it cannot be had. */
  status(): Promise<StatusReport>;
  out(text: string): void;
  /** Whether stdout is a terminal (redraw in place) or not (plain lines). */
  tty: boolean;
  /** Waits `ms`; resolves early (with false) when the view should end. */
  wait(ms: number): Promise<boolean>;
  /** Monotonic ms. */
  now(): number;
}

/** Clear the screen and go home: the only escape sequences `ctl top` writes. */
export const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/**
 * Show the master every `intervalMs` until `iterations` refreshes were
 * shown (forever when undefined) or `io.wait` says to end. Errors from
 * `io.status` propagate (the master went away).
 */
export async function runTop(
  io: TopIo,
  intervalMs: number,
  iterations?: number,
): Promise<void> {
  let previous: TopSample | undefined;
  for (let i = 0; iterations === undefined || i < iterations; i++) {
    if (i > 0 && !(await io.wait(intervalMs))) return;
    const current = { report: await io.status(), at: io.now() };
    io.out(
      io.tty
        ? CLEAR_SCREEN + renderTopScreen(current, previous)
        : renderTopLines(current, previous),
    );
    previous = current;
  }
}
