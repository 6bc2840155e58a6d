/**
 * Text helpers shared by `ctl status` and `ctl top`: durations, accept
 * queues and aligned columns, for people.
 *
 * @module
 */

import type { StatusReport } from "./api.ts";

/** Rows in columns two spaces apart; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  ")
  );
}

/** Accept queues for people: `127.0.0.1:8000 3/2048, unix:/run/app.sock 0/128`. */
export function formatQueues(
  listeners: NonNullable<StatusReport["master"]["listeners"]>,
): string {
  return listeners.map((l) => `${l.address} ${l.queue_length}/${l.queue_capacity}`).join(", ");
}

/** A duration for people: `42s`, `3m05s`, `2h05m`, `3d04h`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}
