// Unit tests of the master's decisions: no processes, a simulated clock.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  ABANDON_AFTER_FAILURES,
  BACKOFF_BASE_MS,
  QUICK_GRACE_MS,
  SETTLE_MS,
  STABLE_MS,
} from "./core.ts";
import type { Effect } from "./events.ts";
import { type Ctx, exits, settings, Sim, spawns } from "./_testing.ts";
import {
  RELEASE_MEMORY_AFTER_MS,
  RELEASE_MEMORY_AT_MOST_MS,
  TRIM_AFTER_COLLECT_MS,
} from "./records.ts";

Deno.test("start spawns one worker per slot and they become ready after the settle delay", () => {
  const sim = new Sim(settings({ workers: 3 }));
  assertEquals(spawns(sim.effects).map((e) => e.slot), [0, 1, 2]);
  assertEquals(sim.live().map((w) => w.state), ["booting", "booting", "booting"]);
  const effects = sim.advance(SETTLE_MS);
  assertEquals(sim.live().map((w) => w.state), ["ready", "ready", "ready"]);
  assert(effects.some((e) => e.type === "generation-ready"));
  // Quiet after the spawns: garbage collected and the C heap trimmed once, then nothing is due.
  const quiet = sim.advance(RELEASE_MEMORY_AFTER_MS + TRIM_AFTER_COLLECT_MS);
  assertEquals(
    quiet.filter((e) => e.type === "collect-garbage" || e.type === "trim-heap").map((e) => e.type),
    [
      "collect-garbage",
      "trim-heap",
    ],
  );
  assertEquals(sim.core.nextDeadline(), undefined, "no timer while nothing is due");
});

Deno.test("memory is given back once workers have neither come nor gone for a while", () => {
  const sim = new Sim(settings({ workers: 2 }));
  const steps = (effects: Effect<Ctx>[]) =>
    effects.filter((e) => e.type === "collect-garbage" || e.type === "trim-heap").map((e) =>
      e.type
    );
  assertEquals(steps(sim.advance(RELEASE_MEMORY_AFTER_MS - 1)), []);
  // A worker's exit and its replacement put it off: one release per burst of churn.
  sim.exit(100, 1);
  assertEquals(steps(sim.advance(RELEASE_MEMORY_AFTER_MS - 1)), [], "put off by the exit");
  assertEquals(steps(sim.advance(1)), ["collect-garbage"]);
  // The trim waits for V8 to have freed what the collection let go.
  assertEquals(steps(sim.advance(TRIM_AFTER_COLLECT_MS - 1)), []);
  assertEquals(steps(sim.advance(1)), ["trim-heap"]);
  assertEquals(steps(sim.advance(10 * RELEASE_MEMORY_AFTER_MS)), [], "once, not on a period");
  // A reload's new workers and the old ones' exits arm it again.
  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({
    type: "config-loaded",
    settings: settings({ workers: 2 }),
    context: { name: "gen2" },
  });
  assertEquals(steps(sim.advance(10 * RELEASE_MEMORY_AFTER_MS)), ["collect-garbage", "trim-heap"]);
});

Deno.test("churn that never leaves 20 s of quiet still gets a collection every 60 s", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  let pid = 100;
  // A crash every 10 s for 3 minutes: never quiet for RELEASE_MEMORY_AFTER_MS.
  const collectedAt: number[] = [];
  for (let t = 0; t < 180_000; t += 10_000) {
    sim.exit(pid++, 1);
    const effects = sim.advance(10_000);
    if (effects.some((e) => e.type === "collect-garbage")) collectedAt.push(sim.now);
  }
  assert(collectedAt.length >= 2 && collectedAt.length <= 4, `collections at ${collectedAt}`);
  for (let i = 1; i < collectedAt.length; i++) {
    assert(collectedAt[i] - collectedAt[i - 1] <= RELEASE_MEMORY_AT_MOST_MS + 10_000);
  }
});

Deno.test("a ready worker that dies is replaced at once in the same slot", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  const effects = sim.exit(100, 0, "SIGKILL");
  assertEquals(spawns(effects).map((e) => e.slot), [0]);
  assert(
    effects.some((e) => e.type === "log" && e.event === "worker.exited" && e.level === "error"),
  );
});

Deno.test("a slot that keeps failing at boot backs off exponentially", () => {
  const sim = new Sim(settings({ workers: 1 }));
  let pid = 100;
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    assertEquals(spawns(sim.exit(pid, 1)).length, 0, "no immediate respawn after a boot failure");
    const due = sim.core.nextDeadline()!;
    delays.push(due - sim.now);
    const effects = sim.advance(due - sim.now);
    assertEquals(spawns(effects).length, 1);
    pid = sim.pidsOf()[0];
  }
  assertEquals(delays, [1, 2, 4, 8, 16].map((k) => k * BACKOFF_BASE_MS));
  // Staying ready for a while clears the record: the next death respawns at once.
  sim.advance(SETTLE_MS + STABLE_MS);
  assertEquals(spawns(sim.exit(pid, 1)).length, 1);
});

Deno.test("exit code 3 before ready halts: workers stopped, then exit 3", () => {
  const sim = new Sim();
  const effects = sim.exit(100, 3);
  assertEquals(sim.killed(effects, "SIGTERM"), [101]);
  assertEquals(spawns(effects).length, 0);
  assertEquals(exits(sim.exit(101, 0)), [{ type: "exit", code: 3 }]);
});

Deno.test("exit 127 from the exec shim halts with 3 and names the command", () => {
  const sim = new Sim(settings({ workers: 1, commandName: "nope" }));
  const effects = sim.exit(100, 127);
  assert(effects.some((e) => e.type === "log" && JSON.stringify(e.props).includes("nope")));
  assertEquals(exits(effects), [{ type: "exit", code: 3 }]);
});

Deno.test("HUP: new generation; old workers retire only as new ones become ready", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  const hup = sim.send({ type: "signal", signal: "SIGHUP" });
  assert(hup.some((e) => e.type === "load-config"));
  const loaded = sim.send({
    type: "config-loaded",
    settings: settings(),
    context: { name: "gen2" },
  });
  assertEquals(spawns(loaded).map((e) => [e.slot, e.generation, e.context.name]), [
    [0, 2, "gen2"],
    [1, 2, "gen2"],
  ]);
  assertEquals(sim.killed(loaded, "SIGTERM"), [], "nothing retired before a new worker is ready");
  const ready = sim.advance(SETTLE_MS);
  assertEquals(sim.killed(ready, "SIGTERM"), [100, 101]);
  sim.exit(100);
  const last = sim.exit(101);
  assert(last.some((e) => e.type === "retire-generation" && e.generation === 1));
});

Deno.test("a second HUP while one loads is queued, not lost", () => {
  const sim = new Sim();
  sim.send({ type: "signal", signal: "SIGHUP" });
  const second = sim.send({ type: "signal", signal: "SIGHUP" });
  assert(!second.some((e) => e.type === "load-config"));
  const failed = sim.send({ type: "config-failed", error: "bad" });
  assert(failed.some((e) => e.type === "load-config"), "the queued reload runs next");
  assert(failed.some((e) => e.type === "log" && e.level === "error"));
});

Deno.test("a new generation that cannot boot is abandoned; the old one keeps serving", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({ type: "config-loaded", settings: settings(), context: { name: "gen2" } });
  const effects = sim.exit(102, 4);
  assertEquals(exits(effects), [], "no halt while an older generation serves");
  assertEquals(sim.killed(effects, "SIGTERM"), [103], "the rest of the new generation goes");
  assertEquals(sim.pidsOf((w) => w.state === "ready"), [100, 101]);
  assertEquals(sim.core.currentContext.name, "gen1");
  sim.exit(103);
  assertEquals(spawns(sim.advance(10_000)).length, 0);
});

Deno.test("repeated boot failures of a new generation abandon the reload", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({
    type: "config-loaded",
    settings: settings({ workers: 1 }),
    context: { name: "gen2" },
  });
  for (let i = 0; i < ABANDON_AFTER_FAILURES; i++) {
    const pid = sim.pidsOf((w) => w.generation === 2)[0];
    sim.exit(pid, 1);
    sim.advance(sim.core.nextDeadline()! - sim.now);
  }
  assertEquals(sim.core.currentContext.name, "gen1");
  assertEquals(sim.pidsOf(), [100]);
});

Deno.test("TERM: graceful stop, SIGKILL at graceful_timeout, exit 0 when all are gone", () => {
  const sim = new Sim(settings({ gracefulTimeoutMs: 5000 }));
  sim.advance(SETTLE_MS);
  const term = sim.send({ type: "signal", signal: "SIGTERM" });
  assertEquals(sim.killed(term, "SIGTERM"), [100, 101]);
  sim.exit(100);
  assertEquals(sim.killed(sim.advance(4999), "SIGKILL"), []);
  assertEquals(sim.killed(sim.advance(1), "SIGKILL"), [101]);
  assertEquals(exits(sim.exit(101, 137, "SIGKILL")), [{ type: "exit", code: 0 }]);
});

Deno.test("INT during a graceful stop turns it quick", () => {
  const sim = new Sim(settings({ gracefulTimeoutMs: 30_000 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGTERM" });
  const quick = sim.send({ type: "signal", signal: "SIGINT" });
  assertEquals(sim.killed(quick, "SIGINT"), [100, 101]);
  assertEquals(sim.killed(sim.advance(QUICK_GRACE_MS), "SIGKILL"), [100, 101]);
});

Deno.test("no respawn and no reload while stopping", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGTERM" });
  assertEquals(spawns(sim.exit(100, 1)).length, 0);
  assert(!sim.send({ type: "signal", signal: "SIGHUP" }).some((e) => e.type === "load-config"));
});

Deno.test("TTIN adds a worker; TTOU retires the oldest and never goes below 1", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  assertEquals(spawns(sim.send({ type: "signal", signal: "SIGTTIN" })).map((e) => e.slot), [2]);
  sim.advance(SETTLE_MS);
  assertEquals(sim.killed(sim.send({ type: "signal", signal: "SIGTTOU" }), "SIGTERM"), [100]);
  assertEquals(sim.killed(sim.send({ type: "signal", signal: "SIGTTOU" }), "SIGTERM"), [101]);
  assertEquals(sim.killed(sim.send({ type: "signal", signal: "SIGTTOU" }), "SIGTERM"), []);
  assertEquals(sim.core.snapshot().desiredWorkers, 1);
});

Deno.test("WINCH stops all workers only without a controlling terminal", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  const tty = sim.send({ type: "signal", signal: "SIGWINCH", hasTerminal: true });
  assertEquals(sim.killed(tty, "SIGTERM"), []);
  const detached = sim.send({ type: "signal", signal: "SIGWINCH", hasTerminal: false });
  assertEquals(sim.killed(detached, "SIGTERM"), [100, 101]);
  sim.exit(100);
  assertEquals(exits(sim.exit(101)), [], "the master stays");
});

Deno.test("USR1 reopens logs and is forwarded to every ready worker, not booting ones", () => {
  const sim = new Sim();
  const booting = sim.send({ type: "signal", signal: "SIGUSR1" });
  assert(booting.some((e) => e.type === "reopen-logs"));
  assertEquals(sim.killed(booting, "SIGUSR1"), [], "a booting worker may not handle USR1 yet");
  sim.advance(SETTLE_MS);
  assertEquals(sim.killed(sim.send({ type: "signal", signal: "SIGUSR1" }), "SIGUSR1"), [100, 101]);
});

Deno.test("USR1 is never lost: a worker booting when it came gets it once ready, once", () => {
  const sim = new Sim(settings({ workers: 2, ready: "notify" }));
  sim.send({ type: "notify", serial: sim.serialOf.get(100)!, fields: { READY: "1" } });
  const usr1 = sim.send({ type: "signal", signal: "SIGUSR1" });
  assertEquals(sim.killed(usr1, "SIGUSR1"), [100], "the ready one at once");
  sim.send({ type: "signal", signal: "SIGUSR1" }); // two USR1s while booting: still one
  const ready = sim.send({
    type: "notify",
    serial: sim.serialOf.get(101)!,
    fields: { READY: "1" },
  });
  assertEquals(sim.killed(ready, "SIGUSR1"), [101], "the booting one as it becomes ready");
  const later = sim.send({
    type: "notify",
    serial: sim.serialOf.get(101)!,
    fields: { STATUS: "x" },
  });
  assertEquals(sim.killed(later, "SIGUSR1"), []);
  // A booting worker that dies before ready takes its pending USR1 with it.
  const s2 = new Sim(settings({ workers: 1, ready: "notify" }));
  s2.send({ type: "signal", signal: "SIGUSR1" });
  const replaced = s2.exit(100, 1);
  assertEquals(s2.killed(replaced, "SIGUSR1"), []);
});

Deno.test("notify mode: ready at READY=1; silent past boot_timeout is aborted as a failed boot", () => {
  const sim = new Sim(settings({ workers: 2, ready: "notify", bootTimeoutMs: 5000 }));
  sim.send({ type: "notify", serial: sim.serialOf.get(100)!, fields: { READY: "1" } });
  assertEquals(sim.pidsOf((w) => w.state === "ready"), [100]);
  const timeout = sim.advance(5000);
  assertEquals(sim.killed(timeout, "SIGABRT"), [101]);
  const exited = sim.exit(101, 134, "SIGABRT");
  assertEquals(spawns(exited).length, 0, "a failed boot backs off");
  assert(exited.some((e) => e.type === "log" && e.event === "worker.boot_failed"));
});

Deno.test("watchdog: armed by the first WATCHDOG=1, fires after `timeout` of silence", () => {
  const sim = new Sim(settings({ workers: 1, watchdogMs: 2000 }));
  sim.advance(SETTLE_MS);
  assertEquals(sim.killed(sim.advance(10_000), "SIGABRT"), [], "never pinged: never killed");
  sim.send({ type: "notify", serial: sim.serialOf.get(100)!, fields: { WATCHDOG: "1" } });
  assertEquals(sim.killed(sim.advance(1999), "SIGABRT"), []);
  const fired = sim.advance(1);
  assertEquals(sim.killed(fired, "SIGABRT"), [100]);
  assert(fired.some((e) => e.type === "log" && e.event === "worker.watchdog_timeout"));
  assertEquals(spawns(fired).length, 1, "its replacement starts at once");
  assertEquals(sim.killed(sim.advance(QUICK_GRACE_MS), "SIGKILL"), [100]);
});

Deno.test("max_worker_lifetime recycles one worker at a time, gated on readiness", () => {
  const sim = new Sim(settings({ workers: 2, maxLifetimeMs: 60_000 }));
  sim.advance(SETTLE_MS);
  const due = sim.advance(60_000);
  assertEquals(spawns(due).length, 1, "one replacement at a time");
  assertEquals(sim.killed(due, "SIGTERM"), [], "the old one serves until its replacement is ready");
  const ready = sim.advance(SETTLE_MS);
  assertEquals(sim.killed(ready, "SIGTERM").length, 1);
});

Deno.test("ready = spawn with boot_timeout under the settle delay: no deadline spins", () => {
  // Regression: nextDeadline counted boot_timeout in spawn mode, but nothing
  // acted on it there, so the timer re-armed at zero delay until the settle.
  const sim = new Sim(settings({ workers: 1, ready: "spawn", bootTimeoutMs: 500 }));
  let ticks = 0;
  for (let due = sim.core.nextDeadline(); due !== undefined; due = sim.core.nextDeadline()) {
    if (++ticks > 10) throw new Error(`deadline ${due} never clears`);
    sim.now = Math.max(sim.now, due);
    sim.send({ type: "tick" });
  }
  assertEquals(sim.live().map((w) => w.state), ["ready"]);
  // The settle, then the quiet spell's garbage collection and heap trim: nothing else.
  assert(ticks <= 3, `${ticks} ticks to become ready and quiet`);
});

Deno.test("an abandoned reload re-adopts the serving generation's config", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  const loaded = sim.send({
    type: "config-loaded",
    settings: settings(),
    context: { name: "gen2" },
  });
  const adopted = (effects: Effect<Ctx>[]) =>
    effects.flatMap((e) => e.type === "adopt-config" ? [e.context.name] : []);
  assertEquals(adopted(loaded), ["gen2"]);
  const abandoned = sim.exit(102, 4);
  assertEquals(adopted(abandoned), ["gen1"], "the old generation serves under its own config");
});
