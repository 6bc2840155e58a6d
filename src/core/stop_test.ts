// Unit tests of the stop sequence and the process-group sweep, on the simulated clock.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { QUICK_GRACE_MS, SETTLE_MS } from "./core.ts";
import { RELEASE_MEMORY_AFTER_MS, TRIM_AFTER_COLLECT_MS } from "./records.ts";
import type { Effect } from "./events.ts";
import { DRAIN_POLL_MS, LEFTOVER_CHECK_MS, LEFTOVER_GRACE_MS } from "./stop.ts";
import { type Ctx, exits, settings, Sim, spawns } from "./_testing.ts";

const has = (effects: Effect<Ctx>[], type: Effect<Ctx>["type"]) =>
  effects.some((e) => e.type === type);
const sweeps = (effects: Effect<Ctx>[]) =>
  effects.filter((e) => e.type === "sweep-group") as Extract<
    Effect<Ctx>,
    { type: "sweep-group" }
  >[];

Deno.test("TERM: handshakes stop, the queues drain, then SIGTERM to each worker's group", () => {
  const sim = new Sim(settings({ gracefulTimeoutMs: 10_000 }));
  sim.advance(SETTLE_MS);
  sim.queued = 3;
  const start = sim.send({ type: "signal", signal: "SIGTERM" });
  assert(has(start, "stopping") && has(start, "close-handshakes"));
  assert(
    start.findIndex((e) => e.type === "stopping") <
      start.findIndex((e) => e.type === "close-handshakes"),
  );
  assertEquals(sim.killed(start, "SIGTERM"), [], "no SIGTERM while connections wait");
  assertEquals(sim.core.snapshot().stopStep, "drain");
  // The queue is read again every DRAIN_POLL_MS until it is empty.
  assertEquals(sim.killed(sim.advance(DRAIN_POLL_MS), "SIGTERM"), []);
  sim.queued = 0;
  const term = sim.advance(DRAIN_POLL_MS);
  assertEquals(sim.killed(term, "SIGTERM"), [100, 101]);
  assert(term.every((e) => e.type !== "kill" || e.group === true), "to the group");
  assertEquals(sim.core.snapshot().stopStep, "workers");
  // The drain and the workers' stop share one graceful_timeout.
  const kill = sim.advance(10_000 - 2 * DRAIN_POLL_MS);
  assertEquals(sim.killed(kill, "SIGKILL"), [100, 101]);
});

Deno.test("TERM: a queue that never empties is given up at graceful_timeout, with a grace left", () => {
  const sim = new Sim(settings({ workers: 1, gracefulTimeoutMs: 5_000 }));
  sim.advance(SETTLE_MS);
  sim.queued = 1;
  sim.send({ type: "signal", signal: "SIGTERM" });
  assertEquals(sim.killed(sim.advance(4_999), "SIGTERM"), []);
  const late = sim.advance(1);
  assertEquals(sim.killed(late, "SIGTERM"), [100]);
  assert(late.some((e) => e.type === "log" && e.event === "stop.drain_unfinished"));
  assertEquals(sim.killed(sim.advance(QUICK_GRACE_MS - 1), "SIGKILL"), []);
  assertEquals(sim.killed(sim.advance(1), "SIGKILL"), [100]);
});

Deno.test("TERM while the workers boot: they may accept already, so the queues drain first", () => {
  // ready = "notify" and no READY=1 yet: booting, though many servers accept by now.
  const sim = new Sim(settings({ workers: 1, ready: "notify" }));
  sim.queued = 2;
  const start = sim.send({ type: "signal", signal: "SIGTERM" });
  assert(has(start, "close-handshakes"));
  assertEquals(sim.killed(start, "SIGTERM"), [], "connections wait: no SIGTERM yet");
  assertEquals(sim.core.snapshot().stopStep, "drain");
  sim.queued = 0;
  assertEquals(sim.killed(sim.advance(DRAIN_POLL_MS), "SIGTERM"), [100]);
});

Deno.test("TERM with no worker alive: handshakes stop, no drain (nobody would accept)", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  // Two crashes in a row: the first is retried at once, the second after a back-off.
  sim.exit(100, 1);
  sim.exit(101, 1);
  assertEquals(sim.live(), [], "between a crash and its retry");
  sim.queued = 5;
  const effects = sim.send({ type: "signal", signal: "SIGTERM" });
  assert(has(effects, "close-handshakes"), "a client arriving now is refused, not reset");
  assert(!has(effects, "sample-drain"));
  assertEquals(exits(effects).length, 1, "and the master exits at once");
});

Deno.test("shutdown_delay: stopping at once, serving on, then the drain and SIGTERM", () => {
  const sim = new Sim(settings({ shutdownDelayMs: 5_000 }));
  sim.advance(SETTLE_MS);
  const start = sim.send({ type: "signal", signal: "SIGTERM" });
  assert(has(start, "stopping"), "/readyz turns 503 at once");
  assert(!has(start, "close-handshakes"));
  assertEquals(sim.core.snapshot().phase, "stopping");
  assertEquals(sim.core.snapshot().stopStep, "delay");
  assertEquals(sim.killed(sim.advance(4_999), "SIGTERM"), []);
  assertEquals(sim.live().map((w) => w.state), ["ready", "ready"], "still serving");
  const end = sim.advance(1);
  assert(has(end, "close-handshakes"));
  assertEquals(sim.killed(end, "SIGTERM"), [100, 101]);
});

Deno.test("INT during shutdown_delay turns it into a quick stop with quick_stop_signal", () => {
  const sim = new Sim(settings({ shutdownDelayMs: 60_000, quickStopSignal: "SIGQUIT" }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGTERM" });
  const quick = sim.send({ type: "signal", signal: "SIGINT" });
  assertEquals(sim.killed(quick, "SIGQUIT"), [100, 101]);
  assert(!has(quick, "close-handshakes"), "a quick stop skips the drain");
  assertEquals(sim.killed(sim.advance(QUICK_GRACE_MS), "SIGKILL"), [100, 101]);
  sim.exit(100, 0, "SIGKILL");
  assertEquals(exits(sim.exit(101, 0, "SIGKILL")), [{ type: "exit", code: 0 }]);
  assertEquals(sim.core.nextDeadline(), undefined, "the delay's deadline is gone");
});

Deno.test("quick stop: INT to each group by default, SIGKILL after the short grace", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  const quick = sim.send({ type: "signal", signal: "SIGQUIT" });
  assertEquals(sim.killed(quick, "SIGINT"), [100, 101]);
  assert(quick.every((e) => e.type !== "kill" || e.group === true));
});

Deno.test("a gone worker's group: SIGTERM at once, SIGKILL after the grace, checked until empty", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.groups.set(100, 2); // a helper and its child stayed behind
  const gone = sim.exit(100, 1);
  assertEquals(sweeps(gone).map((e) => [e.pgid, e.signal]), [[100, "SIGTERM"]]);
  assert(gone.some((e) => e.type === "log" && e.event === "group.leftover"));
  assertEquals(sweeps(sim.advance(LEFTOVER_GRACE_MS - 1)), []);
  const kill = sim.advance(1);
  assertEquals(sweeps(kill).map((e) => [e.pgid, e.signal]), [[100, "SIGKILL"]]);
  const check = sim.advance(LEFTOVER_CHECK_MS);
  assertEquals(sweeps(check).map((e) => [e.pgid, e.signal]), [[100, undefined]]);
  assertEquals(
    sweeps(sim.advance(RELEASE_MEMORY_AFTER_MS + TRIM_AFTER_COLLECT_MS)),
    [],
    "the empty group is forgotten",
  );
  assertEquals(sim.core.nextDeadline(), undefined, "nothing more is due");
});

Deno.test("the master exits only once every leftover group is empty", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGTERM" });
  sim.groups.set(100, 1);
  assertEquals(exits(sim.exit(100, 0)), [], "its helper is still running");
  const later = sim.advance(LEFTOVER_GRACE_MS + LEFTOVER_CHECK_MS);
  assertEquals(exits(later), [{ type: "exit", code: 0 }]);
});

Deno.test("an empty group (or one the executor refused) is forgotten at once", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGTERM" });
  const gone = sim.exit(100, 0);
  assertEquals(sweeps(gone).length, 1);
  assertEquals(exits(gone), [{ type: "exit", code: 0 }]);
});

Deno.test("the watchdog's SIGABRT goes to the stuck process only; its SIGKILL to the group", () => {
  const sim = new Sim(settings({ workers: 1, watchdogMs: 1_000 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "notify", serial: 1, fields: { WATCHDOG: "1" } });
  const abort = sim.advance(1_000);
  const sent = abort.filter((e) => e.type === "kill");
  assertEquals(sent.map((e) => [e.signal, e.group]), [["SIGABRT", false]]);
  const kill = sim.advance(QUICK_GRACE_MS).filter((e) => e.type === "kill");
  assertEquals(kill.map((e) => [e.signal, e.group]), [["SIGKILL", true]]);
});

Deno.test("a halt (exit 3 at boot) does not wait out shutdown_delay", () => {
  const sim = new Sim(settings({ shutdownDelayMs: 60_000 }));
  const effects = sim.exit(100, 3);
  assertEquals(sim.killed(effects, "SIGTERM"), [101]);
});

Deno.test("ctl stop with shutdown_delay says so; a worker dying during the delay is not replaced", () => {
  const sim = new Sim(settings({ shutdownDelayMs: 10_000 }));
  sim.advance(SETTLE_MS);
  const effects = sim.send({ type: "request", action: "stop", source: "ctl", reply: () => {} });
  const reply = effects.find((e) => e.type === "reply");
  assertEquals(reply?.type === "reply" && reply.reply, {
    ok: true,
    message: "stopping gracefully after shutdown_delay (10 s)",
  });
  assertEquals(spawns(sim.exit(100, 1)), []);
  assertEquals(sim.killed(sim.advance(10_000), "SIGTERM"), [101]);
});
