// The deadline table and the timer clamp: what arms the timer is what acts.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "./core.ts";
import { RELEASE_MEMORY_AFTER_MS, TRIM_AFTER_COLLECT_MS } from "./records.ts";
import { MAX_TIMER_MS, timerDelay, workerDeadlines } from "./deadlines.ts";
import type { WorkerRecord } from "./state.ts";
import { settings, Sim, spawns } from "./_testing.ts";

const DAY_MS = 86_400_000;

Deno.test("timerDelay: never negative, rounded up, never past setTimeout's range", () => {
  assertEquals(timerDelay(100, 200), 0);
  assertEquals(timerDelay(100.2, 0), 101);
  assertEquals(timerDelay(30 * DAY_MS, 0), MAX_TIMER_MS);
  assertEquals(MAX_TIMER_MS, 2 ** 31 - 1);
});

Deno.test("workerDeadlines: each kind only where something acts on it", () => {
  const w = (over: Partial<WorkerRecord>): WorkerRecord => ({
    serial: 1,
    slot: 0,
    generation: 1,
    state: "booting",
    spawnedAt: 0,
    killSent: false,
    superseded: false,
    ...over,
  });
  const kinds = (rec: WorkerRecord, over = {}, recycling = false) =>
    workerDeadlines(rec, settings(over), recycling).map((d) => `${d.kind}@${d.at}`);
  // Spawn mode: the settle delay once the pid is known; boot_timeout is notify-only.
  assertEquals(kinds(w({}), { bootTimeoutMs: 500 }), []);
  assertEquals(kinds(w({ pid: 9 }), { bootTimeoutMs: 500 }), [`settle@${SETTLE_MS}`]);
  assertEquals(kinds(w({ pid: 9 }), { ready: "notify", bootTimeoutMs: 500 }), ["boot-timeout@500"]);
  assertEquals(kinds(w({ pid: 9 }), { ready: "notify", bootTimeoutMs: 0 }), []);
  // Watchdog from the first ping; recycling held back while a wave runs.
  const ready = w({ pid: 9, state: "ready", lastPing: 10, recycleAt: 99 });
  assertEquals(kinds(ready, { watchdogMs: 5 }), ["watchdog@15", "recycle@99"]);
  assertEquals(kinds(ready, { watchdogMs: 0 }, true), []);
  // Stopping: only the SIGKILL deadline, once.
  assertEquals(kinds(w({ state: "stopping", killAt: 7, lastPing: 1 }), { watchdogMs: 5 }), [
    "kill@7",
  ]);
  assertEquals(kinds(w({ state: "stopping", killAt: 7, killSent: true })), []);
});

Deno.test("a 30-day max_worker_lifetime: the clamped timer fires early, nothing happens, it recycles on time", () => {
  const lifetime = 30 * DAY_MS;
  const sim = new Sim(settings({ workers: 1, maxLifetimeMs: lifetime }));
  sim.advance(RELEASE_MEMORY_AFTER_MS + TRIM_AFTER_COLLECT_MS); // ready, and the start's memory release done
  const due = sim.core.nextDeadline()!;
  assertEquals(due, SETTLE_MS + lifetime, "30 days after it became ready");
  assert(timerDelay(due, sim.now) === MAX_TIMER_MS, "the timer is clamped");
  // The clamped timer fires: a tick with nothing due does nothing and keeps the deadline.
  sim.now += MAX_TIMER_MS;
  assertEquals(sim.send({ type: "tick" }), []);
  assertEquals(sim.core.nextDeadline(), due);
  assertEquals(spawns(sim.advance(due - sim.now)).length, 1, "recycled at 30 days");
});
