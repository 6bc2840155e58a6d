/**
 * The autoscaling benchmark (docs/saturation.md). A step load
 * (low → high → low closed-loop clients, one connection per request) on
 * sync workers that wait 20 ms per request, run twice — autoscale on, and a
 * fixed worker count — sampling every 250 ms the accept queue and the
 * worker count from `ctl status --json` and counting answers per second.
 * Writes the raw series to /tmp/arbiter-bench/autoscale.json and a picture
 * of both runs to /tmp/arbiter-bench/autoscale.svg (for BENCHMARKS.md).
 *
 *   deno run -A scripts/bench/autoscale.ts
 *
 * Traffic goes to 127.0.0.1 only; every client loop ends with its phase,
 * and the whole run is bounded by the schedule (about 2 × 120 s).
 *
 * @module
 */

import type { StatusReport } from "../../src/control/api.ts";
import { APPS, freePort, now, sleep, startArbiter, waitForHttp } from "./lib.ts";

/** The load: how many clients, until when (seconds from the start). */
const SCHEDULE = [
  { untilS: 20, clients: 2 },
  { untilS: 50, clients: 16 },
  { untilS: 120, clients: 2 },
];
const SAMPLE_MS = 250;
const OUT_DIR = "/tmp/arbiter-bench";

/** One sample of a run. */
export interface Point {
  /** Seconds since the load started. */
  t: number;
  queue: number;
  workers: number;
  /** Answers in the second before `t`. */
  rps: number;
}

/** A run's series and its totals. */
export interface RunResult {
  name: string;
  points: Point[];
  ok: number;
  failed: number;
}

/** One request on a fresh connection; true for a 200. */
async function request(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.0\r\nHost: bench\r\n\r\n"));
    const buf = new Uint8Array(256);
    let text = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text.startsWith("HTTP/1.0 200");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch { /* already closed */ }
  }
}

/** Closed-loop clients following {@link SCHEDULE}; resolves when the schedule ends. */
async function stepLoad(port: number, start: number, done: number[]): Promise<{ failed: number }> {
  let failed = 0;
  const end = start + SCHEDULE.at(-1)!.untilS * 1000;
  const clientsAt = (t: number) => SCHEDULE.find((p) => t < p.untilS * 1000)?.clients ?? 0;
  const client = async (index: number) => {
    while (now() < end) {
      if (index >= clientsAt(now() - start)) {
        await sleep(50);
        continue;
      }
      if (await request(port)) done.push(now());
      else failed++;
    }
  };
  const most = Math.max(...SCHEDULE.map((p) => p.clients));
  await Promise.all(Array.from({ length: most }, (_, i) => client(i)));
  return { failed };
}

async function status(socket: string): Promise<StatusReport> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
  try {
    const res = await fetch("http://arbiter/v1/status", { client });
    return await res.json();
  } finally {
    client.close();
  }
}

async function run(name: string, toml: string): Promise<RunResult> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-bench-autoscale-" });
  const port = freePort();
  const socket = `${dir}/ctl.sock`;
  await Deno.writeTextFile(
    `${dir}/app.toml`,
    `command = ["python3", "${APPS}/slow_fd.py"]\nbind = "127.0.0.1:${port}"\n` +
      `control_socket = "${socket}"\ngraceful_timeout = 5\n${toml}`,
  );
  const master = startArbiter(["--config", `${dir}/app.toml`]);
  try {
    await waitForHttp(`http://127.0.0.1:${port}/`);
    const start = now();
    const done: number[] = [];
    const points: Point[] = [];
    const load = stepLoad(port, start, done);
    let finished = false;
    load.finally(() => finished = true);
    while (!finished) {
      const s = await status(socket);
      const t = now();
      points.push({
        t: (t - start) / 1000,
        queue: (s.master.listeners ?? []).reduce((sum, l) => sum + l.queue_length, 0),
        workers: s.workers.filter((w) => w.state === "ready").length,
        rps: done.filter((d) => d > t - 1000 && d <= t).length,
      });
      await sleep(SAMPLE_MS);
    }
    const { failed } = await load;
    return { name, points, ok: done.length, failed };
  } finally {
    master.signal("SIGTERM");
    await master.waitExit(30_000);
    await Deno.remove(dir, { recursive: true });
  }
}

/** A polyline of `values` over `ts` in a box; `max` is the top of the scale. */
function polyline(
  ts: number[],
  values: number[],
  box: { x: number; y: number; w: number; h: number },
  tMax: number,
  max: number,
  color: string,
): string {
  const pts = ts.map((t, i) => {
    const x = box.x + (t / tMax) * box.w;
    const y = box.y + box.h - (Math.min(values[i], max) / max) * box.h;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  return `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(" ")}"/>`;
}

/**
 * Both runs side by side, three panels each (accept queue, ready workers,
 * answers per second) on shared scales, as a self-contained SVG.
 */
export function renderSvg(runs: RunResult[]): string {
  const panelW = 420, panelH = 110, gap = 30, left = 50, top = 30;
  const tMax = Math.max(1, ...runs.flatMap((r) => r.points.map((p) => p.t)));
  const metrics = [
    { key: "queue", label: "accept queue", color: "#c0392b" },
    { key: "workers", label: "ready workers", color: "#2471a3" },
    { key: "rps", label: "answers/s", color: "#229954" },
  ] as const;
  const width = left + runs.length * (panelW + gap);
  const height = top + metrics.length * (panelH + gap) + 10;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  runs.forEach((run, col) => {
    const x = left + col * (panelW + gap);
    parts.push(
      `<text x="${x}" y="${top - 12}" font-size="13">${run.name}: ${run.ok} ok, ` +
        `${run.failed} failed</text>`,
    );
    metrics.forEach((m, row) => {
      const box = { x, y: top + row * (panelH + gap), w: panelW, h: panelH };
      const max = Math.max(1, ...runs.flatMap((r) => r.points.map((p) => p[m.key])));
      parts.push(
        `<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" fill="none" ` +
          `stroke="#ccc"/>`,
        `<text x="${box.x + 4}" y="${box.y + 12}" fill="${m.color}">${m.label} (max ${max})</text>`,
        polyline(
          run.points.map((p) => p.t),
          run.points.map((p) => p[m.key]),
          box,
          tMax,
          max,
          m.color,
        ),
      );
    });
  });
  parts.push(`<text x="${left}" y="${height - 4}">time: 0–${Math.round(tMax)} s</text>`, "</svg>");
  return parts.join("\n") + "\n";
}

/** Per load phase: mean ready workers, accept queue and answers/s of each run (markdown). */
export function phaseTable(runs: RunResult[]): string {
  const rows = ["| run | phase | clients | workers (mean) | queue (mean) | answers/s (mean) |"];
  rows.push("| --- | --- | --: | --: | --: | --: |");
  for (const r of runs) {
    let from = 0;
    for (const phase of SCHEDULE) {
      const pts = r.points.filter((p) => p.t >= from && p.t < phase.untilS);
      const mean = (f: (p: Point) => number) =>
        pts.length ? (pts.reduce((s, p) => s + f(p), 0) / pts.length).toFixed(1) : "-";
      rows.push(
        `| ${r.name} | ${from}–${phase.untilS} s | ${phase.clients} | ${
          mean((p) => p.workers)
        } | ` +
          `${mean((p) => p.queue)} | ${mean((p) => p.rps)} |`,
      );
      from = phase.untilS;
    }
  }
  return rows.join("\n");
}

if (import.meta.main) {
  await Deno.mkdir(OUT_DIR, { recursive: true });
  const runs = [
    await run(
      "autoscale 1..16",
      "workers = 2\nautoscale = true\nworkers_min = 1\nworkers_max = 16\n" +
        "autoscale_quiet_period = 5\n",
    ),
    await run("fixed 2 workers", "workers = 2\n"),
  ];
  await Deno.writeTextFile(`${OUT_DIR}/autoscale.json`, JSON.stringify(runs, null, 1));
  await Deno.writeTextFile(`${OUT_DIR}/autoscale.svg`, renderSvg(runs));
  for (const r of runs) console.log(`${r.name}: ${r.ok} ok, ${r.failed} failed`);
  console.log(phaseTable(runs));
  console.log(`wrote ${OUT_DIR}/autoscale.json and ${OUT_DIR}/autoscale.svg`);
}
