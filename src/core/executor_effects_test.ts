// The decisions the executor only carries out: when a worker's record goes
// (and post_exit fires), which timeout hook fires, whether the master is
// ready, and the master's own timers (systemd pings, reaping inherited workers).
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "./core.ts";
import { INHERITED_POLL_MS } from "./deadlines.ts";
import type { Effect } from "./events.ts";
import { type Ctx, settings, Sim, spawns } from "./_testing.ts";

const types = (effects: Effect<Ctx>[]) => effects.map((e) => e.type);
const count = (effects: Effect<Ctx>[], type: Effect<Ctx>["type"]) =>
  effects.filter((e) => e.type === type).length;

Deno.test("an exit is judged first, then worker-gone carries post_exit's context, before any spawn", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  const effects = sim.exit(100, 3);
  const gone = effects.find((e) => e.type === "worker-gone");
  assertEquals(gone, {
    type: "worker-gone",
    serial: 1,
    exited: { slot: 0, pid: 100, generation: 1, code: 3, signal: null },
  });
  const order = types(effects);
  assert(order.indexOf("log") < order.indexOf("worker-gone"), "the exit is logged first");
  assert(order.indexOf("worker-gone") < order.indexOf("spawn"), "post_exit before pre_spawn");
});

Deno.test("worker-gone comes before the retirement of the generation it emptied", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({ type: "config-loaded", settings: settings({ workers: 1 }), context: { name: "g2" } });
  sim.advance(SETTLE_MS); // the new worker is ready: the old one is sent TERM
  const effects = sim.exit(100, 0, "SIGTERM");
  const order = types(effects);
  assert(order.includes("retire-generation"));
  assert(order.indexOf("worker-gone") < order.indexOf("retire-generation"));
});

Deno.test("a spawn failure drops the record without post_exit; an unknown exit still drops it", () => {
  const sim = new Sim(settings({ workers: 1 }));
  const serial = spawns(sim.effects)[0].serial;
  sim.exit(100, 1); // so the record is gone from the core
  const failed = sim.send({ type: "spawn-failed", serial: 99, error: "nope" });
  assertEquals(failed.filter((e) => e.type === "worker-gone"), [
    { type: "worker-gone", serial: 99 },
  ]);
  const again = sim.send({ type: "exited", serial, code: 1, signal: null });
  assertEquals(again.filter((e) => e.type === "worker-gone"), [{ type: "worker-gone", serial }]);
});

Deno.test("timeouts fire the worker_timeout hook named by their deadline; other stops do not", () => {
  const boot = new Sim(settings({ workers: 1, ready: "notify", bootTimeoutMs: 5_000 }));
  const timedOut = boot.advance(5_000).filter((e) => e.type === "worker-timed-out");
  assertEquals(timedOut, [{
    type: "worker-timed-out",
    hook: "boot_timeout",
    worker: { slot: 0, pid: 100, generation: 1 },
  }]);

  const watchdog = new Sim(settings({ workers: 1, watchdogMs: 2_000 }));
  watchdog.advance(SETTLE_MS);
  watchdog.send({ type: "notify", serial: 1, fields: { WATCHDOG: "1" } });
  const hooks = watchdog.advance(2_000).filter((e) => e.type === "worker-timed-out");
  assertEquals(hooks.map((e) => e.type === "worker-timed-out" && e.hook), ["worker_timeout"]);

  const scaled = new Sim(settings({ workers: 2 }));
  scaled.advance(SETTLE_MS);
  const down = scaled.send({ type: "signal", signal: "SIGTTOU" });
  assertEquals(count(down, "kill"), 1);
  assertEquals(count(down, "worker-timed-out"), 0);
});

Deno.test("ready (/readyz): running with at least one ready worker; never while stopping", () => {
  const sim = new Sim(settings({ workers: 2 }));
  assertEquals(sim.core.snapshot().ready, false, "booting workers are not ready");
  sim.advance(SETTLE_MS);
  assertEquals(sim.core.snapshot().ready, true);
  sim.exit(100, 1);
  assertEquals(sim.core.snapshot().ready, true, "one ready worker is enough");
  sim.send({ type: "signal", signal: "SIGTERM" });
  assertEquals(sim.core.snapshot().ready, false, "out of rotation as soon as a stop begins");
});

Deno.test("systemd watchdog pings come from the deadline table, from the first step to the exit", () => {
  const sim = new Sim(settings({ workers: 1 }), { name: "g1" }, { serviceWatchdogMs: 10_000 });
  assertEquals(count(sim.effects, "ping-service-manager"), 1, "the first goes out at start");
  sim.advance(SETTLE_MS);
  assert(sim.core.nextDeadline()! <= 10_000, "the timer is armed for the next ping");
  assertEquals(count(sim.advance(60_000), "ping-service-manager"), 6);
  sim.send({ type: "signal", signal: "SIGTERM" });
  sim.exit(100, 0, "SIGTERM");
  assertEquals(sim.core.nextDeadline(), undefined, "no ping after the exit");
  assertEquals(count(new Sim().effects, "ping-service-manager"), 0, "none unless systemd asked");
});

Deno.test("inherited workers are reaped on every SIGCHLD and polled while any lives", () => {
  const sim = new Sim(settings({ workers: 2 }), { name: "g5" }, {
    inherited: { generation: 4, workers: [{ pid: 50, slot: 0 }, { pid: 51, slot: 1 }] },
  });
  sim.adoptInherited();
  assertEquals(count(sim.send({ type: "signal", signal: "SIGCHLD" }), "reap-children"), 1);
  assertEquals(count(sim.advance(INHERITED_POLL_MS * 4), "reap-children"), 4);
  sim.exit(50, 0, "SIGTERM");
  sim.exit(51, 0, "SIGTERM");
  assertEquals(count(sim.advance(INHERITED_POLL_MS * 4), "reap-children"), 0, "none left");
  const plain = new Sim();
  assertEquals(count(plain.advance(INHERITED_POLL_MS * 4), "reap-children"), 0);
});

Deno.test("on_reload: the core asks the hook, and a veto refuses the reload and releases its listeners", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  const g2 = { name: "g2" };
  const loaded = sim.send({
    type: "config-loaded",
    settings: settings({ workers: 3, reloadVeto: true }),
    context: g2,
  });
  assertEquals(loaded.filter((e) => e.type === "vet-reload"), [
    { type: "vet-reload", context: g2, oldWorkers: 1, newWorkers: 3 },
  ]);
  assertEquals(spawns(loaded).length, 0, "nothing starts before the verdict");
  assertEquals(sim.core.contextsInUse(), [{ name: "gen1" }, g2], "its listeners stay meanwhile");
  assertEquals(sim.core.snapshot().reloading, true);

  const vetoed = sim.send({ type: "reload-vetted", ok: false, context: g2 });
  assertEquals(types(vetoed).filter((t) => t !== "log"), [
    "rollout-ended",
    "reload-done",
    "release-listeners",
  ]);
  assertEquals(sim.core.contextsInUse(), [{ name: "gen1" }]);
  assertEquals(sim.core.snapshot().generation, 1);
  assertEquals(sim.core.snapshot().reloading, false);
});

Deno.test("on_reload: an approved config starts its generation; a stale verdict is ignored", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  const g2 = { name: "g2" };
  sim.send({ type: "config-loaded", settings: settings({ reloadVeto: true }), context: g2 });
  assertEquals(sim.send({ type: "reload-vetted", ok: true, context: { name: "other" } }).length, 0);
  const approved = sim.send({ type: "reload-vetted", ok: true, context: g2 });
  assert(types(approved).includes("adopt-config"));
  assertEquals(spawns(approved).length, 2);
  assertEquals(sim.core.snapshot().generation, 2);
});

Deno.test("without an on_reload hook a loaded config starts at once", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.send({ type: "signal", signal: "SIGHUP" });
  const loaded = sim.send({ type: "config-loaded", settings: settings(), context: { name: "g2" } });
  assertEquals(count(loaded, "vet-reload"), 0);
  assertEquals(sim.core.snapshot().generation, 2);
});
