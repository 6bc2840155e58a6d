/**
 * The SVG of the heavy-app benchmark (scripts/bench/heavy.ts): one panel of
 * throughput (2xx answers per second) and one of the workers' memory (PSS, MB)
 * over time, a line per setup, the HUPs as dashed verticals.
 *
 * @module
 */

/** One setup's series, as heavy.ts measured them. */
export interface SvgRun {
  name: string;
  rps: number[];
  memory: [number, number][];
  hupAt: number[];
  failed: number;
}

const COLORS = ["#c0392b", "#2471a3", "#17a589", "#8e44ad"];
const WIDTH = 1000;
const LEFT = 60;
const PLOT_W = 560;
const PANEL_H = 170;

function panel(
  runs: SvgRun[],
  top: number,
  title: string,
  seconds: number,
  series: (r: SvgRun) => [number, number][],
): string[] {
  const yMax = Math.max(1, ...runs.flatMap((r) => series(r).map((p) => p[1]))) * 1.1;
  const x = (t: number) => (LEFT + (t / seconds) * PLOT_W).toFixed(1);
  const y = (v: number) => (top + PANEL_H - (v / yMax) * PANEL_H).toFixed(1);
  const out = [
    `<rect x="${LEFT}" y="${top}" width="${PLOT_W}" height="${PANEL_H}" fill="none" stroke="#ccc" />`,
    `<text x="${LEFT}" y="${top - 6}" font-size="12">${title}</text>`,
    `<text x="${LEFT - 6}" y="${top + 10}" text-anchor="end">${Math.round(yMax)}</text>`,
    `<text x="${LEFT - 6}" y="${top + PANEL_H}" text-anchor="end">0</text>`,
  ];
  for (const t of runs[0]?.hupAt ?? []) {
    out.push(
      `<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${top + PANEL_H}" stroke="#999" ` +
        `stroke-dasharray="3,3" />`,
    );
  }
  runs.forEach((r, i) => {
    const points = series(r).map(([t, v]) => `${x(t)},${y(v)}`).join(" ");
    out.push(
      `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" ` +
        `points="${points}" />`,
    );
  });
  return out;
}

/** The whole picture, for docs/bench/heavy_reload.svg. */
export function renderHeavySvg(runs: SvgRun[], seconds: number): string {
  const height = 2 * PANEL_H + 110;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white" />`,
    ...panel(
      runs,
      30,
      "throughput: 2xx answers per second (dashed: HUP)",
      seconds,
      (r) => r.rps.map((v, s) => [s + 0.5, v]),
    ),
    ...panel(
      runs,
      PANEL_H + 70,
      "workers' memory: PSS summed over every process under the master, MB",
      seconds,
      (r) => r.memory,
    ),
    `<text x="${LEFT}" y="${height - 8}">time since the load started: 0–${seconds} s</text>`,
  ];
  runs.forEach((r, i) => {
    const yy = 50 + i * 18;
    parts.push(
      `<rect x="${LEFT + PLOT_W + 20}" y="${yy - 9}" width="12" height="3" ` +
        `fill="${COLORS[i % COLORS.length]}" />`,
      `<text x="${LEFT + PLOT_W + 38}" y="${yy - 4}">${escape(r.name)} (${r.failed} failed)</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
