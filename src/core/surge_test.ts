// Unit tests of `max_surge` on the simulated clock: how many workers a rollout may keep alive.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "./core.ts";
import type { Effect } from "./events.ts";
import { type Ctx, settings, Sim, spawns } from "./_testing.ts";

/** Starts `workers` ready workers and HUPs into generation 2 with the same settings. */
function rollout(workers: number, maxSurge?: number): { sim: Sim; loaded: Effect<Ctx>[] } {
  const s = settings({ workers, maxSurge });
  const sim = new Sim(s);
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  const loaded = sim.send({ type: "config-loaded", settings: s, context: { name: "gen2" } });
  return { sim, loaded };
}

const ready = (sim: Sim) => sim.pidsOf((w) => w.state === "ready").length;

Deno.test("max_surge unset: the whole new generation starts at once", () => {
  const { loaded } = rollout(4);
  assertEquals(spawns(loaded).length, 4);
});

Deno.test("max_surge 1: one new worker at a time, each ready before an old one goes", () => {
  const { sim, loaded } = rollout(4, 1);
  assertEquals(spawns(loaded).length, 1, "one worker beyond `workers`");
  let peak = sim.live().length;
  for (let step = 0; step < 4; step++) {
    const becameReady = sim.advance(SETTLE_MS);
    peak = Math.max(peak, sim.live().length);
    const retired = sim.killed(becameReady, "SIGTERM");
    assertEquals(retired.length, 1, `step ${step}: one old worker retired per new ready one`);
    assertEquals(spawns(becameReady).length, 0, "no new worker while the old one still runs");
    assert(ready(sim) >= 4, `step ${step}: never fewer than 4 ready`);
    const exited = sim.exit(retired[0]);
    peak = Math.max(peak, sim.live().length);
    assertEquals(spawns(exited).length, step < 3 ? 1 : 0, `step ${step}: next one once it exited`);
  }
  assertEquals(peak, 5);
  assertEquals(sim.live().map((w) => w.generation), [2, 2, 2, 2]);
  assertEquals(ready(sim), 4);
});

Deno.test("max_surge 2: two at a time", () => {
  const { sim, loaded } = rollout(4, 2);
  assertEquals(spawns(loaded).length, 2);
  const becameReady = sim.advance(SETTLE_MS);
  const retired = sim.killed(becameReady, "SIGTERM");
  assertEquals(retired.length, 2);
  assertEquals(spawns(sim.exit(retired[0])).length, 1);
  assertEquals(spawns(sim.exit(retired[1])).length, 1);
  assertEquals(sim.live().length, 6);
});

Deno.test("max_surge 1: an old worker dying mid-rollout makes room for the next new one", () => {
  const { sim } = rollout(4, 1);
  // 100..103 are generation 1, 104 the first new one (still booting). An old one crashes:
  const effects = sim.exit(101, 1, "SIGSEGV");
  assertEquals(spawns(effects).length, 1);
  assertEquals(sim.live().length, 5);
  sim.advance(SETTLE_MS);
  assert(ready(sim) >= 3, "the survivors and the new ones serve");
});

Deno.test("max_surge 1: age recycling waits for the retired worker to exit", () => {
  const s = settings({ workers: 2, maxSurge: 1, maxLifetimeMs: 60_000 });
  const sim = new Sim(s);
  sim.advance(SETTLE_MS);
  const due = sim.advance(60_000);
  assertEquals(spawns(due).length, 1, "the first replacement");
  const swapped = sim.advance(SETTLE_MS);
  const [old] = sim.killed(swapped, "SIGTERM");
  assert(old !== undefined, "its predecessor retired once it was ready");
  assertEquals(spawns(swapped).length, 0, "the second replacement waits: 3 are alive");
  assertEquals(sim.live().length, 3);
  assertEquals(spawns(sim.exit(old)).length, 1, "it starts once the retired one is gone");
});

Deno.test("max_surge 1: scaling up is not held back by draining workers", () => {
  const sim = new Sim(settings({ workers: 3, maxSurge: 1 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGTTOU" });
  sim.send({ type: "signal", signal: "SIGTTOU" }); // two drain, still alive: 3 processes
  const up = sim.send({ type: "signal", signal: "SIGTTIN" });
  assertEquals(spawns(up).length, 1, "a missing worker is capacity, not surge");
  const up2 = sim.send({ type: "signal", signal: "SIGTTIN" });
  assertEquals(spawns(up2).length, 1);
  assertEquals(sim.live().length, 5, "above workers + 1, but only draining ones are extra");
});

Deno.test("max_surge 1: an in-place upgrade replaces the inherited workers one at a time", () => {
  const sim = new Sim(settings({ workers: 2, maxSurge: 1 }), { name: "new image" }, {
    inherited: { generation: 4, workers: [{ pid: 50, slot: 0 }, { pid: 51, slot: 1 }] },
  });
  sim.adoptInherited();
  assertEquals(spawns(sim.effects).length, 1, "one new worker beside the two inherited");
  const [first] = sim.killed(sim.advance(SETTLE_MS), "SIGTERM");
  assertEquals(spawns(sim.exit(first)).length, 1);
  const [second] = sim.killed(sim.advance(SETTLE_MS), "SIGTERM");
  sim.exit(second);
  assertEquals(sim.live().map((w) => w.generation), [5, 5]);
});
