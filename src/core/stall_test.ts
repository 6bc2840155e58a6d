// Deadlines after a stall: time the master did not run does not count against workers.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "./core.ts";
import { settings, Sim } from "./_testing.ts";

/** The executor's view of a 5 s SIGSTOP: the clock jumps, then `stalled`, then the tick. */
function pause(sim: Sim, ms: number, queued: (sim: Sim) => void = () => {}) {
  const since = sim.now;
  const before = sim.effects.length;
  sim.now += ms;
  sim.send({ type: "stalled", since });
  queued(sim); // notify messages that waited in the sockets, read before the tick
  sim.send({ type: "tick" });
  return sim.effects.slice(before);
}

Deno.test("a 5 s pause kills no worker whose deadline fell due only in the pause", () => {
  const sim = new Sim(settings({ workers: 3, watchdogMs: 2000 }));
  sim.advance(SETTLE_MS);
  for (const pid of sim.pidsOf()) {
    sim.send({ type: "notify", serial: sim.serialOf.get(pid)!, fields: { WATCHDOG: "1" } });
  }
  sim.advance(300);
  const effects = pause(sim, 5000);
  assertEquals(sim.killed(effects, "SIGABRT"), []);
  assert(effects.some((e) => e.type === "log" && e.message.includes("did not run")));
  assertEquals(sim.core.snapshot().stalls, 1);
});

Deno.test("after a pause a genuinely hung worker is still caught", () => {
  const sim = new Sim(settings({ workers: 2, watchdogMs: 2000 }));
  sim.advance(SETTLE_MS);
  for (const pid of sim.pidsOf()) {
    sim.send({ type: "notify", serial: sim.serialOf.get(pid)!, fields: { WATCHDOG: "1" } });
  }
  sim.advance(1000);
  // Worker 100's pings waited in its socket; worker 101 sent nothing.
  pause(
    sim,
    5000,
    (s) => s.send({ type: "notify", serial: s.serialOf.get(100)!, fields: { WATCHDOG: "1" } }),
  );
  // 101 had 1 s left when the master paused; 100 pinged at the resume.
  assertEquals(sim.killed(sim.advance(1500), "SIGABRT"), [101]);
});

Deno.test("boot_timeout: READY=1 queued in the pause counts; no READY=1 is still a timeout", () => {
  const sim = new Sim(settings({ workers: 2, ready: "notify", bootTimeoutMs: 2000 }));
  sim.advance(500);
  const effects = pause(
    sim,
    5000,
    (s) => s.send({ type: "notify", serial: s.serialOf.get(100)!, fields: { READY: "1" } }),
  );
  assertEquals(sim.killed(effects, "SIGABRT"), []);
  assertEquals(sim.live().map((w) => w.state), ["ready", "booting"]);
  assertEquals(sim.killed(sim.advance(1600), "SIGABRT"), [101], "1.5 s left when the pause began");
});

Deno.test("listeners restored: every worker is replaced, the old ones go as the new are ready", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  const effects = sim.send({ type: "listeners-restored", addresses: ["127.0.0.1:8000"] });
  assertEquals(effects.filter((e) => e.type === "spawn").length, 2);
  assertEquals(sim.killed(effects, "SIGTERM"), [], "none retired before a replacement is ready");
  assertEquals(sim.killed(sim.advance(SETTLE_MS), "SIGTERM"), [100, 101]);
});
