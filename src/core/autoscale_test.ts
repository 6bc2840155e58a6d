/**
 * The autoscaler against a model of the real thing, on a simulated clock:
 * an accept queue served by k workers, each serving one request at a time;
 * a new worker serves only after the 1 s settle delay; a removed worker
 * finishes its request and is gone. Loads are closed-loop (C clients, each
 * sending its next request when the previous one is answered, like wrk) or
 * open-loop (arrivals at a rate, evenly or Poisson).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Config } from "../config/types.ts";
import {
  Autoscaler,
  type AutoscaleSettings,
  autoscaleSettingsOf,
  clampWorkers,
  UP_SAMPLES,
} from "./autoscale.ts";

const SETTLE_MS = 1000;

/** A small seeded PRNG (mulberry32), so every run is the same. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Load =
  | { kind: "closed"; clients: (t: number) => number }
  | { kind: "open"; rate: (t: number) => number; poisson: boolean };

interface Run {
  /** Desired worker count at each sample. */
  workers: { t: number; n: number }[];
  decisions: { t: number; workers: number; reason: string }[];
  maxQueue: number;
}

function simulate(
  settings: AutoscaleSettings,
  load: Load,
  opts: { start: number; durationMs: number; serviceMs: number; seed?: number },
): Run {
  const random = rng(opts.seed ?? 1);
  const scaler = new Autoscaler(settings, 0);
  // Each worker: when it becomes ready, and until when it is busy.
  let workers: { readyAt: number; busyUntil: number }[] = [];
  const add = (n: number, t: number) => {
    for (let i = 0; i < n; i++) workers.push({ readyAt: t + SETTLE_MS, busyUntil: 0 });
  };
  add(opts.start, -SETTLE_MS); // the initial workers are ready at t=0
  let desired = opts.start;
  let queue = 0;
  // Closed loop: clients that are waiting for an answer or queued.
  let inFlight = 0;
  const completions: number[] = []; // times at which a closed-loop request completes
  let openCredit = 0;
  const run: Run = { workers: [], decisions: [], maxQueue: 0 };
  for (let t = 0; t < opts.durationMs; t++) {
    // Arrivals.
    if (load.kind === "closed") {
      for (let i = completions.length - 1; i >= 0; i--) {
        if (completions[i] <= t) {
          completions.splice(i, 1);
          inFlight--;
        }
      }
      const want = load.clients(t);
      while (inFlight < want) {
        inFlight++;
        queue++;
      }
    } else if (load.poisson) {
      if (random() < load.rate(t) / 1000) queue++;
    } else {
      openCredit += load.rate(t) / 1000;
      while (openCredit >= 1) {
        openCredit--;
        queue++;
      }
    }
    // Service: a free, ready worker accepts the next waiting connection.
    for (const w of workers) {
      if (queue === 0) break;
      if (w.readyAt <= t && w.busyUntil <= t) {
        queue--;
        w.busyUntil = t + opts.serviceMs;
        if (load.kind === "closed") completions.push(w.busyUntil);
      }
    }
    run.maxQueue = Math.max(run.maxQueue, queue);
    if (t % settings.intervalMs === 0) {
      const ready = workers.filter((w) => w.readyAt <= t).length;
      run.workers.push({ t, n: desired });
      const decision = scaler.observe({ now: t, queued: queue, desired, ready });
      if (decision) {
        run.decisions.push({ t, ...decision });
        if (decision.workers > desired) add(decision.workers - desired, t);
        else workers = workers.slice(desired - decision.workers); // the oldest go first
        desired = decision.workers;
      }
    }
  }
  return run;
}

const SETTINGS: AutoscaleSettings = { min: 1, max: 32, intervalMs: 1000, quietMs: 30_000 };

/** The desired counts seen from `from` ms on. */
function countsFrom(run: Run, from: number): number[] {
  return run.workers.filter((s) => s.t >= from).map((s) => s.n);
}

/** When the count first reached `n` at or after `from`. */
function reachedAt(run: Run, n: number, from: number): number {
  return run.workers.find((s) => s.t >= from && s.n >= n)?.t ?? Infinity;
}

Deno.test("closed loop, 8 clients: from 1 worker to 8 within a few seconds, then it stays at 8 (±1)", () => {
  const run = simulate(SETTINGS, { kind: "closed", clients: () => 8 }, {
    start: 1,
    durationMs: 15 * 60_000,
    serviceMs: 50,
  });
  assert(reachedAt(run, 8, 0) <= 6000, `reached 8 at ${reachedAt(run, 8, 0)} ms`);
  const late = countsFrom(run, 60_000);
  assert(late.every((n) => n >= 7 && n <= 9), `counts ${[...new Set(late)]}`);
  // Settled: at 8 nearly all the time, probing 7 ever more rarely.
  assert(late.filter((n) => n === 8).length / late.length > 0.97);
  const probes = run.decisions.filter((d) => d.t >= 60_000).length;
  assert(probes <= 12, `${probes} changes in 14 minutes`);
});

Deno.test("open loop, even arrivals needing 8 workers (75 req/s × 100 ms): settles at 8 (±1)", () => {
  const run = simulate(SETTINGS, { kind: "open", rate: () => 75, poisson: false }, {
    start: 2,
    durationMs: 15 * 60_000,
    serviceMs: 100,
  });
  assert(reachedAt(run, 8, 0) <= 10_000, `reached 8 at ${reachedAt(run, 8, 0)} ms`);
  const late = countsFrom(run, 120_000);
  assert(late.every((n) => n >= 7 && n <= 9), `counts ${[...new Set(late)]}`);
  assert(late.filter((n) => n === 8 || n === 9).length / late.length > 0.95);
});

Deno.test("open loop, Poisson arrivals needing 8 workers: settles at 8 to 10, never runs away", () => {
  // 70 req/s × 100 ms is 7 busy workers on average, so 8 are needed; with
  // random arrivals at 87 % utilisation a 9th is genuinely used (queues of
  // one or two flicker at 8), so this load settles one above the even case.
  for (const seed of [1, 2, 3]) {
    const run = simulate(SETTINGS, { kind: "open", rate: () => 70, poisson: true }, {
      start: 2,
      durationMs: 15 * 60_000,
      serviceMs: 100,
      seed,
    });
    const late = countsFrom(run, 300_000);
    const within = late.filter((n) => n >= 8 && n <= 10).length / late.length;
    assert(
      within > 0.85,
      `seed ${seed}: ${within} of the time within 8..10; ${[...new Set(late)]}`,
    );
    assert(late.every((n) => n >= 7 && n <= 12), `seed ${seed}: ${[...new Set(late)]}`);
  }
});

Deno.test("step load low → high → low: up within seconds, back down one at a time", () => {
  const clients = (t: number) => (t >= 60_000 && t < 180_000 ? 16 : 2);
  const run = simulate(SETTINGS, { kind: "closed", clients }, {
    start: 2,
    durationMs: 15 * 60_000,
    serviceMs: 50,
  });
  const up = reachedAt(run, 16, 60_000) - 60_000;
  assert(up <= 6000, `16 workers ${up} ms after the step`);
  const high = run.workers.filter((s) => s.t >= 70_000 && s.t < 180_000).map((s) => s.n);
  assert(high.every((n) => n >= 15 && n <= 17), `high: ${[...new Set(high)]}`);
  // After the load falls: removals one at a time, each after a quiet period.
  let previous = run.workers.find((s) => s.t === 180_000)!.n;
  for (const d of run.decisions.filter((d) => d.t >= 180_000)) {
    if (d.workers < previous) assertEquals(d.workers, previous - 1);
    previous = d.workers;
  }
  const last = run.workers.at(-1)!.n;
  assert(last >= 1 && last <= 3, `ends at ${last}`);
});

Deno.test("never outside workers_min..workers_max", () => {
  const settings = { ...SETTINGS, min: 2, max: 5, quietMs: 5000 };
  const heavy = simulate(settings, { kind: "closed", clients: () => 50 }, {
    start: 2,
    durationMs: 60_000,
    serviceMs: 50,
  });
  assert(heavy.workers.every((s) => s.n >= 2 && s.n <= 5));
  assertEquals(heavy.workers.at(-1)!.n, 5);
  const idle = simulate(settings, { kind: "closed", clients: () => 0 }, {
    start: 5,
    durationMs: 60_000,
    serviceMs: 50,
  });
  assert(idle.workers.every((s) => s.n >= 2 && s.n <= 5));
  assertEquals(idle.workers.at(-1)!.n, 2);
});

Deno.test("one busy sample is noise; a queue must be sustained, with every worker ready", () => {
  assertEquals(UP_SAMPLES, 3);
  const scaler = new Autoscaler(SETTINGS, 0);
  const obs = (now: number, queued: number, ready = 4) =>
    scaler.observe({ now, queued, desired: 4, ready });
  assertEquals(obs(1000, 5), undefined);
  assertEquals(obs(2000, 0), undefined);
  assertEquals(obs(3000, 5), undefined);
  assertEquals(obs(4000, 5), undefined);
  // A booting worker interrupts the streak.
  assertEquals(obs(5000, 5, 3), undefined);
  assertEquals(obs(6000, 3), undefined);
  assertEquals(obs(7000, 3), undefined);
  // A standing queue of 3 on 4 workers: 3 more.
  assertEquals(obs(8000, 3)?.workers, 7);
});

Deno.test("a falling queue is a backlog being caught up with: no more workers", () => {
  const scaler = new Autoscaler(SETTINGS, 0);
  const obs = (now: number, queued: number) =>
    scaler.observe({ now, queued, desired: 4, ready: 4 });
  assertEquals(obs(1000, 90), undefined);
  assertEquals(obs(2000, 95), undefined);
  assertEquals(obs(3000, 80), undefined);
  // Growing (open-loop overload): at most doubling.
  assertEquals(obs(4000, 85), undefined);
  assertEquals(obs(5000, 120)?.workers, 8);
});

Deno.test("a manual change is clamped to the bounds and restarts the judgement", () => {
  const scaler = new Autoscaler({ ...SETTINGS, min: 2, max: 6 }, 0);
  assertEquals(scaler.manual(10, 0), 6);
  assertEquals(scaler.manual(1, 0), 2);
  assertEquals(scaler.manual(4, 50_000), 4);
  // The quiet period counts from the manual change.
  assertEquals(scaler.observe({ now: 60_000, queued: 0, desired: 4, ready: 4 }), undefined);
  assertEquals(
    scaler.observe({ now: 80_000, queued: 0, desired: 4, ready: 4 })?.workers,
    3,
  );
  // A desired count outside the bounds (a reload narrowed them) comes back inside.
  assertEquals(scaler.observe({ now: 81_000, queued: 0, desired: 9, ready: 9 })?.workers, 6);
  assertEquals(clampWorkers(0, { min: 1, max: 3 }), 1);
});

Deno.test("autoscaleSettingsOf: off gives none; seconds become ms", () => {
  const base = {
    autoscale: false,
    workers: 3,
    autoscale_interval: 0.5,
    autoscale_quiet_period: 30,
  } as Config;
  assertEquals(autoscaleSettingsOf(base), undefined);
  assertEquals(
    autoscaleSettingsOf({ ...base, autoscale: true, workers_min: 2, workers_max: 9 }),
    { min: 2, max: 9, intervalMs: 500, quietMs: 30_000 },
  );
});
