// Every restart path is backed off: early ends after ready, STOPPING=1 storms,
// the cap on stopping workers per slot; and availability over halt.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  ABANDON_AFTER_FAILURES,
  BACKOFF_MAX_MS,
  earlyEndDelay,
  MAX_STOPPING_PER_SLOT,
  SETTLE_MS,
  STABLE_MS,
} from "./core.ts";
import { exits, settings, Sim, spawns } from "./_testing.ts";

Deno.test("early-end delay: first at once, then 100 ms doubling to the cap", () => {
  assertEquals([1, 2, 3, 4, 5].map(earlyEndDelay), [0, 100, 200, 400, 800]);
  assertEquals(earlyEndDelay(100), BACKOFF_MAX_MS);
});

Deno.test("exit 0 right after ready is backed off: no tight loop", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  let started = 0;
  // Each worker becomes ready, then exits 0 at once, for 60 simulated seconds.
  const end = sim.now + 60_000;
  while (sim.now < end) {
    const [pid] = sim.pidsOf((w) => w.state === "ready");
    if (pid !== undefined) started += spawns(sim.exit(pid, 0)).length;
    const due = sim.core.nextDeadline();
    if (due === undefined) break;
    started += spawns(sim.advance(Math.max(1, due - sim.now))).length;
  }
  // Without back-off: one per settle delay (60); with it: a handful.
  assert(started < 20, `started ${started} workers in 60 s`);
  assert(started >= 5, `still retried (${started})`);
});

Deno.test("a worker that served for STABLE_MS clears the back-off: its death is replaced at once", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.exit(100, 1);
  sim.advance(SETTLE_MS); // 101 ready
  assertEquals(spawns(sim.exit(101, 1)).length, 0, "second early end waits");
  sim.advance(200);
  const [pid] = sim.pidsOf();
  sim.advance(SETTLE_MS + STABLE_MS);
  assertEquals(spawns(sim.exit(pid, 1)).length, 1);
});

Deno.test("STOPPING=1 right after READY=1: backed off, and at most MAX_STOPPING_PER_SLOT stopping", () => {
  const sim = new Sim(settings({ workers: 1, ready: "notify" }));
  let most = 0;
  for (let i = 0; i < 200 && sim.now < 20_000; i++) {
    for (const pid of sim.pidsOf((w) => w.state === "booting")) {
      const serial = sim.serialOf.get(pid)!;
      sim.send({ type: "notify", serial, fields: { READY: "1" } });
      sim.send({ type: "notify", serial, fields: { STOPPING: "1" } }); // and lingers
    }
    most = Math.max(most, sim.live().filter((w) => w.state === "stopping").length);
    const due = sim.core.nextDeadline()!;
    sim.advance(Math.max(1, due - sim.now));
  }
  assert(most <= MAX_STOPPING_PER_SLOT, `${most} stopping at once`);
  // Lingering workers are killed after graceful_timeout (30 s); in 20 s no more than the cap.
  assert(sim.live().length <= MAX_STOPPING_PER_SLOT + 1, `${sim.live().length} workers`);
  const spawned = spawns(sim.effects).length;
  assert(spawned <= MAX_STOPPING_PER_SLOT + 1, `${spawned} spawned`);
});

Deno.test("the stopping cap: a slot refills once one of its stopping workers exits", () => {
  const sim = new Sim(settings({ workers: 1, ready: "notify" }));
  const stopOnItsOwn = () => {
    const [pid] = sim.pidsOf((w) => w.state === "booting");
    const serial = sim.serialOf.get(pid)!;
    sim.send({ type: "notify", serial, fields: { READY: "1" } });
    sim.advance(STABLE_MS); // not early: no back-off, only the cap applies
    return { pid, effects: sim.send({ type: "notify", serial, fields: { STOPPING: "1" } }) };
  };
  assertEquals(spawns(stopOnItsOwn().effects).length, 1);
  const second = stopOnItsOwn();
  assertEquals(spawns(second.effects).length, 0, "two stopping: the replacement waits");
  assertEquals(spawns(sim.exit(second.pid, 0)).length, 1, "one gone: it starts");
});

Deno.test("availability over halt: exit 3 after workers served retries the slot, keeps the rest", () => {
  const sim = new Sim(settings({ workers: 3 }));
  sim.advance(SETTLE_MS);
  sim.exit(100, 1); // a worker dies; its replacement cannot boot (the program went missing)
  let pid = sim.pidsOf((w) => w.state === "booting")[0];
  for (let i = 0; i < 4; i++) {
    const effects = sim.exit(pid, 127);
    assertEquals(exits(effects), [], "never halts once something served");
    assertEquals(sim.killed(effects, "SIGTERM"), [], "the healthy workers are left alone");
    sim.advance(sim.core.nextDeadline()! - sim.now);
    pid = sim.pidsOf((w) => w.state === "booting")[0];
  }
  const snap = sim.core.snapshot();
  assertEquals(snap.failing.map((f) => f.slot), [0], "reported as cannot boot");
  assert(snap.failing[0].what.includes("cannot be executed"));
  assertEquals(sim.pidsOf((w) => w.state === "ready"), [101, 102]);
  sim.advance(SETTLE_MS); // the program is back: the slot boots
  assertEquals(sim.live().filter((w) => w.state === "ready").length, 3);
  assertEquals(sim.core.snapshot().failing, []);
});

Deno.test("exit 3 before anything served still halts", () => {
  const sim = new Sim(settings({ workers: 2 }));
  assertEquals(sim.core.snapshot().served, false);
  sim.exit(100, 3);
  assertEquals(exits(sim.exit(101, 0)), [{ type: "exit", code: 3 }]);
});

Deno.test("rollout outcome: done once the old generation is gone; abandoned when it cannot boot", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  assertEquals(sim.core.snapshot().rollout?.outcome, "in-progress");
  sim.send({ type: "config-loaded", settings: settings(), context: { name: "gen2" } });
  sim.advance(SETTLE_MS);
  assertEquals(sim.core.snapshot().rollout?.outcome, "in-progress", "old ones still draining");
  const ended = [sim.exit(100), sim.exit(101)].flat().filter((e) => e.type === "rollout-ended");
  assertEquals(ended.length, 1);
  assertEquals(sim.core.snapshot().rollout, {
    attempt: 1,
    kind: "reload",
    generation: 2,
    outcome: "done",
  });

  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({ type: "config-loaded", settings: settings(), context: { name: "bad" } });
  for (let i = 0; i < ABANDON_AFTER_FAILURES; i++) {
    const [pid] = sim.pidsOf((w) => w.generation === 3 && w.state === "booting");
    sim.exit(pid, 1);
    sim.advance(sim.core.nextDeadline()! - sim.now);
  }
  const r = sim.core.snapshot().rollout!;
  assertEquals([r.attempt, r.generation, r.outcome], [2, 3, "abandoned"]);
  assert(r.reason?.includes("failed to boot"));
  assertEquals(sim.core.snapshot().generation, 2, "the old generation keeps serving");

  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({ type: "config-failed", error: "bad toml" });
  assertEquals(sim.core.snapshot().rollout?.outcome, "refused");
});

Deno.test("an upgrade keeps the worker count the old image ran", () => {
  const sim = new Sim(settings({ workers: 2 }), { name: "gen" }, {
    inherited: {
      generation: 4,
      workers: [{ pid: 50, slot: 0 }, { pid: 51, slot: 1 }],
    },
    desiredWorkers: 3,
  });
  assertEquals(sim.core.snapshot().desiredWorkers, 3);
  assertEquals(spawns(sim.effects).length, 3);
  assertEquals(sim.core.snapshot().rollout?.kind, "upgrade");
});
