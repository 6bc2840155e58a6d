// Unit tests of the operator's requests on the simulated clock: `ctl restart
// ID`, `ctl signal SIG [ID]`, `ctl scale +N/-N`, and the rollout a reload or
// upgrade reply names (what `ctl reload --wait` follows).
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "./core.ts";
import type { Effect, Event, Reply } from "./events.ts";
import { type Ctx, settings, Sim, spawns } from "./_testing.ts";

/** Sends a request; returns the one reply the core decided and the effects. */
function ask(sim: Sim, event: (reply: (r: Reply) => void) => Event<Ctx>) {
  const effects = sim.send(event(() => {}));
  const replies = effects.flatMap((e) => e.type === "reply" ? [e.reply] : []);
  assertEquals(replies.length, 1, "exactly one reply");
  return { reply: replies[0], effects };
}

const restart = (slot: number) => (reply: (r: Reply) => void): Event<Ctx> => ({
  type: "restart",
  slot,
  reply,
});
const signal = (name: string, slot?: number) => (reply: (r: Reply) => void): Event<Ctx> => ({
  type: "signal-workers",
  signal: name,
  slot,
  reply,
});
const scale = (workers: number, relative = true) => (reply: (r: Reply) => void): Event<Ctx> => ({
  type: "scale",
  workers,
  relative,
  reply,
});

const signalled = (sim: Sim, effects: Effect<Ctx>[]) =>
  effects.flatMap((e) =>
    e.type === "signal-worker" ? [[sim.pids.get(e.serial), e.signal] as const] : []
  );

Deno.test("restart ID: the new worker is ready before the old one is stopped", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  const [old0, old1] = sim.pidsOf();
  const { reply, effects } = ask(sim, restart(0));
  assert(reply.ok, JSON.stringify(reply));
  const started = spawns(effects);
  assertEquals(started.map((e) => e.slot), [0], "a replacement for slot 0 starts at once");
  assertEquals(sim.killed(effects, "SIGTERM"), [], "the old one keeps serving meanwhile");
  const ready = sim.advance(SETTLE_MS);
  assertEquals(sim.killed(ready, "SIGTERM"), [old0], "stopped once its replacement is ready");
  const stopping = sim.live().find((w) => w.pid === old0)!;
  assertEquals(stopping.stopReason, "restarted");
  sim.exit(old0);
  assertEquals(sim.pidsOf().length, 2);
  assert(sim.pidsOf().includes(old1), "the other slot was left alone");
  assertEquals(sim.live().find((w) => w.pid === old0), undefined);
  assertEquals(sim.core.snapshot().counters.restarts, 0, "an asked-for restart is no crash");
});

Deno.test("restart ID: unknown slot, already replacing, rollout, stopping", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  assertEquals(ask(sim, restart(2)).reply, { ok: false, error: "no worker 2: ids are 0 to 1" });
  assert(ask(sim, restart(1)).reply.ok);
  assertEquals(ask(sim, restart(1)).reply, {
    ok: false,
    error: "worker 1 is already being replaced",
  });
  sim.advance(SETTLE_MS);
  sim.exit(sim.killed(sim.effects, "SIGTERM")[0]);
  sim.send({ type: "signal", signal: "SIGHUP" });
  const during = ask(sim, restart(0)).reply;
  assert(!during.ok && during.error.includes("reload"), JSON.stringify(during));
  sim.send({ type: "config-failed", error: "bad" });
  sim.send({ type: "signal", signal: "SIGTERM" });
  assertEquals(ask(sim, restart(0)).reply, { ok: false, error: "the master is stopping" });
});

Deno.test("restart ID: a slot between crash retries is started now", () => {
  const sim = new Sim(settings({ workers: 1 }));
  const [first] = sim.pidsOf();
  sim.exit(first, 1); // a boot failure: the slot waits out its back-off
  assertEquals(sim.pidsOf(), []);
  const { reply, effects } = ask(sim, restart(0));
  assert(reply.ok && reply.message.includes("not running"), JSON.stringify(reply));
  assertEquals(spawns(effects).map((e) => e.slot), [0]);
});

Deno.test("signal SIG [ID]: to ready workers' groups; booting skipped; others refused", () => {
  const sim = new Sim(settings({ workers: 3 }));
  sim.advance(SETTLE_MS);
  const pids = sim.pidsOf();
  const all = ask(sim, signal("SIGHUP"));
  assertEquals(all.reply, { ok: true, message: "SIGHUP sent to worker(s) 0, 1, 2" });
  assertEquals(signalled(sim, all.effects), pids.map((p) => [p, "SIGHUP"] as const));
  const one = ask(sim, signal("SIGUSR2", 1));
  assertEquals(signalled(sim, one.effects), [[pids[1], "SIGUSR2"]]);
  const refused = ask(sim, signal("SIGKILL")).reply;
  assert(
    !refused.ok && refused.error.includes("allowed: HUP, INT, QUIT, TERM"),
    JSON.stringify(refused),
  );
  assertEquals(ask(sim, signal("SIGTERM", 7)).reply, {
    ok: false,
    error: "no worker 7: ids are 0 to 2",
  });
  // A TERMed worker exits like any worker that ends unasked: it is replaced.
  const term = ask(sim, signal("SIGTERM", 0));
  assertEquals(signalled(sim, term.effects), [[pids[0], "SIGTERM"]]);
  const after = sim.exit(pids[0], 0, "SIGTERM");
  assertEquals(spawns(after).map((e) => e.slot), [0]);
  // Its replacement is booting: skipped, and said so.
  const mixed = ask(sim, signal("SIGUSR1")).reply;
  assertEquals(mixed, {
    ok: true,
    message: "SIGUSR1 sent to worker(s) 1, 2; 1 not ready (skipped)",
  });
  const booting = ask(sim, signal("SIGHUP", 0)).reply;
  assert(!booting.ok && booting.error.includes("not ready"), JSON.stringify(booting));
  sim.send({ type: "signal", signal: "SIGTERM" });
  assertEquals(ask(sim, signal("SIGHUP")).reply, { ok: false, error: "the master is stopping" });
});

Deno.test("scale +N / -N: relative to the desired count when handled; the same bounds", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  assertEquals(ask(sim, scale(3)).reply, { ok: true, message: "workers 2 -> 5" });
  assertEquals(sim.core.snapshot().desiredWorkers, 5);
  assertEquals(ask(sim, scale(-4)).reply, { ok: true, message: "workers 5 -> 1" });
  assertEquals(ask(sim, scale(-1)).reply, {
    ok: false,
    error: "1 - 1 = 0 workers: expected a result from 1 to 10000",
  });
  const over = ask(sim, scale(10_000)).reply;
  assert(!over.ok && over.error.includes("from 1 to 10000"), JSON.stringify(over));
  assertEquals(sim.core.snapshot().desiredWorkers, 1, "a refused change leaves the count");
  assertEquals(ask(sim, scale(4, false)).reply, { ok: true, message: "workers 1 -> 4" });
});

Deno.test("reload and upgrade replies name the rollout that --wait follows", () => {
  const sim = new Sim(settings({ workers: 1 }));
  sim.advance(SETTLE_MS);
  const reload = (reply: (r: Reply) => void): Event<Ctx> => ({
    type: "request",
    action: "reload",
    source: "control request",
    reply,
  });
  const first = ask(sim, reload).reply;
  assert(first.ok);
  assertEquals(first.rollout, { attempt: 1, kind: "reload" });
  const queued = ask(sim, reload).reply;
  assert(queued.ok);
  assertEquals(queued.rollout, { attempt: 2, kind: "reload" }, "the queued one will be attempt 2");
  sim.send({ type: "config-failed", error: "bad" });
  assertEquals(sim.core.snapshot().rollout?.attempt, 2);
  sim.send({ type: "config-failed", error: "bad" });
  const upgrade = ask(sim, (reply) => ({
    type: "request",
    action: "upgrade",
    source: "control request",
    reply,
  })).reply;
  assert(upgrade.ok);
  assertEquals(upgrade.rollout, { attempt: 3, kind: "upgrade", generation: 2 });
});

Deno.test("ctl logs ID: an id that names no worker gets restart's answer", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  assertEquals(sim.core.unknownWorker(1), undefined);
  assertEquals(sim.core.unknownWorker(2), "no worker 2: ids are 0 to 1");
  assertEquals(sim.core.unknownWorker(-1), "no worker -1: ids are 0 to 1");
});
