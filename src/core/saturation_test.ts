/**
 * The core's saturation decisions on the simulated clock:
 * sampling only when a feature is on, autoscaling through the same path as
 * TTIN/TTOU, manual counts within the bounds, and memory recycles done like
 * age recycles (replacement first, one at a time, their own stop reason).
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { Effect } from "./events.ts";
import { type Ctx, settings, Sim, spawns } from "./_testing.ts";
import { SETTLE_MS } from "./core.ts";
import type { SaturationSettings } from "./saturation_policy.ts";

const MiB = 1024 * 1024;
const OFF = { limitBytes: 0, windowMs: 0 };

function autoscaled(workers: number, min = 1, max = 4): Sim {
  const saturation: SaturationSettings = {
    autoscale: { min, max, intervalMs: 1000, quietMs: 5000 },
    memory: OFF,
  };
  return new Sim(settings({ workers, saturation }));
}

/** Moves the clock `ms`, answering every queue sample with `queued`. */
function run(sim: Sim, ms: number, queued: number): Effect<Ctx>[] {
  const out: Effect<Ctx>[] = [];
  const end = sim.now + ms;
  while (sim.now < end) {
    const step = sim.advance(Math.min(250, end - sim.now));
    out.push(...step);
    for (const e of step) {
      if (e.type === "sample-queue") out.push(...sim.send({ type: "queue-sampled", queued }));
    }
  }
  return out;
}

const changes = (effects: Effect<Ctx>[]) =>
  effects.flatMap((e) => e.type === "workers-changed" ? [[e.from, e.to]] : []);

Deno.test("saturation off: no sample is ever asked for, no extra deadline", () => {
  const sim = new Sim(settings({ workers: 2 }));
  const effects = sim.advance(60_000);
  assert(!effects.some((e) => e.type === "sample-queue" || e.type === "sample-memory"));
  assertEquals(sim.core.nextDeadline(), undefined, "an idle master has nothing to wake up for");
});

Deno.test("autoscale: a sustained queue adds workers (hook fired), never above the max", () => {
  const sim = autoscaled(1, 1, 4);
  sim.advance(SETTLE_MS);
  const up = run(sim, 10_000, 5);
  assertEquals(sim.core.snapshot().desiredWorkers, 4);
  assert(changes(up).length >= 1 && changes(up).every(([from, to]) => to > from && to <= 4));
  assert(up.some((e) =>
    e.type === "log" && e.event === "scale.changed" &&
    String(e.props?.why).startsWith("autoscale:")
  ));
  run(sim, 10_000, 5);
  assertEquals(sim.core.snapshot().desiredWorkers, 4, "held at workers_max");
});

Deno.test("autoscale: down one at a time after the quiet period, never below the min", () => {
  const sim = autoscaled(4, 2, 4);
  sim.advance(SETTLE_MS);
  const early = run(sim, 2500, 0);
  assertEquals(changes(early), [], "not before the quiet period");
  const down = run(sim, 30_000, 0);
  assertEquals(changes(down), [[4, 3], [3, 2]]);
  assertEquals(sim.core.snapshot().desiredWorkers, 2);
  assertEquals(sim.killed(down, "SIGTERM").length, 2);
});

Deno.test("manual scaling stays within autoscale's bounds; TTOU stops at workers_min", () => {
  const sim = autoscaled(2, 2, 3);
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGTTOU" });
  assertEquals(sim.core.snapshot().desiredWorkers, 2);
  sim.send({ type: "signal", signal: "SIGTTIN" });
  sim.send({ type: "signal", signal: "SIGTTIN" });
  assertEquals(sim.core.snapshot().desiredWorkers, 3);
  const answer = sim.send({ type: "scale", workers: 50, reply: () => {} })
    .find((e) => e.type === "reply");
  assertEquals(
    answer?.type === "reply" && answer.reply,
    { ok: true, message: "workers 3 -> 3 (autoscale on, within 2..3)" },
  );
  const plain = new Sim(settings({ workers: 1 }));
  plain.send({ type: "signal", signal: "SIGTTOU" });
  assertEquals(plain.core.snapshot().desiredWorkers, 1);
});

Deno.test("max_worker_memory: replacement first, one at a time, stop reason and exit reason", () => {
  const memory = { limitBytes: 100 * MiB, windowMs: 2000 };
  const sim = new Sim(settings({ workers: 2, saturation: { memory } }));
  sim.advance(SETTLE_MS);
  const [a, b] = sim.pidsOf();
  const rss = new Map([[a, 300 * MiB], [b, 200 * MiB]]);
  const sampleAll = (effects: Effect<Ctx>[]) => {
    const out: Effect<Ctx>[] = [];
    for (const e of effects) {
      if (e.type !== "sample-memory") continue;
      const samples = e.workers.map((w) => ({
        serial: w.serial,
        memoryBytes: rss.get(w.pid) ?? MiB,
      }));
      out.push(...sim.send({ type: "memory-sampled", samples }));
    }
    return out;
  };
  let effects: Effect<Ctx>[] = [];
  for (let i = 0; i < 6 && spawns(effects).length === 0; i++) {
    const step = sim.advance(1000);
    effects = [...step, ...sampleAll(step)];
  }
  assertEquals(spawns(effects).length, 1, "one replacement, not both at once");
  assertEquals(sim.killed(effects, "SIGTERM"), [], "the old one stays until the new one is ready");
  assert(effects.some((e) => e.type === "log" && e.level === "warning"));
  const settled = sim.advance(SETTLE_MS);
  assertEquals(sim.killed(settled, "SIGTERM"), [a], "the one most over the limit goes first");
  const stopping = sim.live().find((w) => w.pid === a)!;
  assertEquals(stopping.stopReason, "max-memory");
  sim.exit(a);
  assertEquals(sim.core.snapshot().counters.exits.memory, 1);
  assertEquals(sim.core.snapshot().counters.restarts, 0, "a recycle is not a restart");
  // Then the other one, still over the limit, goes the same way.
  let next: Effect<Ctx>[] = [];
  for (let i = 0; i < 8 && sim.killed(next, "SIGTERM").length === 0; i++) {
    const step = sim.advance(1000);
    next = [...next, ...step, ...sampleAll(step)];
  }
  assertEquals(sim.killed(next, "SIGTERM"), [b]);
});

Deno.test("a reload with autoscale on keeps the count autoscaling reached (within the new bounds)", () => {
  const saturation: SaturationSettings = {
    autoscale: { min: 1, max: 4, intervalMs: 1000, quietMs: 5000 },
    memory: OFF,
  };
  const sim = new Sim(settings({ workers: 1, saturation }));
  sim.advance(SETTLE_MS);
  run(sim, 10_000, 5);
  assertEquals(sim.core.snapshot().desiredWorkers, 4);
  const narrower = { ...saturation, autoscale: { ...saturation.autoscale!, max: 3 } };
  sim.send({
    type: "config-loaded",
    settings: settings({ workers: 1, saturation: narrower }),
    context: { name: "gen2" },
  });
  assertEquals(sim.core.snapshot().desiredWorkers, 3);
  sim.send({
    type: "config-loaded",
    settings: settings({ workers: 2 }),
    context: { name: "gen3" },
  });
  assertEquals(sim.core.snapshot().desiredWorkers, 2, "autoscale off again: the file's count");
});
