// Core decisions beyond the basic lifecycle: requests and their replies,
// scale, in-place upgrade, inherited workers, STOPPING=1, spawn failure.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { BACKOFF_BASE_MS, SETTLE_MS } from "./core.ts";
import type { Effect, Reply } from "./events.ts";
import { type Ctx, settings, Sim, spawns } from "./_testing.ts";

/** Sends a request with a reply slot; returns the reply and the effects. */
function ask(sim: Sim, event: (reply: (r: Reply) => void) => Parameters<Sim["send"]>[0]) {
  const replies: Reply[] = [];
  const effects = sim.send(event((r) => replies.push(r)));
  // The core never calls the reply itself: it asks the executor to, with an effect.
  assertEquals(replies, []);
  const answers = effects.flatMap((e) => e.type === "reply" ? [e.reply] : []);
  assertEquals(answers.length, 1, "exactly one reply");
  return { reply: answers[0], effects };
}

const has = (effects: Effect<Ctx>[], type: Effect<Ctx>["type"]) =>
  effects.some((e) => e.type === type);

Deno.test("control reload: replies what the core did — started, queued, refused", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  const request = (reply: (r: Reply) => void) =>
    ({ type: "request", action: "reload", source: "control request", reply }) as const;
  const first = ask(sim, request);
  assert(first.reply.ok && first.reply.message.startsWith("reloading"));
  assert(has(first.effects, "load-config"));
  const second = ask(sim, request);
  assert(second.reply.ok && second.reply.message.includes("another one will follow"));
  assert(!has(second.effects, "load-config"));
  sim.send({ type: "config-failed", error: "bad" }); // the queued one runs
  sim.send({ type: "config-failed", error: "bad" });
  // During an upgrade, a reload is refused, and the reply says so.
  sim.send({ type: "signal", signal: "SIGUSR2" });
  const refused = ask(sim, request);
  assertEquals(refused.reply, { ok: false, error: "an upgrade is in progress" });
});

Deno.test("control requests while stopping: refused, except stop, which can turn quick", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  const stop = ask(sim, (reply) => ({ type: "request", action: "stop", source: "ctl", reply }));
  assertEquals(stop.reply, { ok: true, message: "stopping gracefully" });
  for (const action of ["reload", "upgrade"] as const) {
    const r = ask(sim, (reply) => ({ type: "request", action, source: "ctl", reply }));
    assertEquals(r.reply, { ok: false, error: "the master is stopping" });
  }
  assertEquals(ask(sim, (reply) => ({ type: "scale", workers: 5, reply })).reply, {
    ok: false,
    error: "the master is stopping",
  });
  const quick = ask(
    sim,
    (reply) => ({ type: "request", action: "quick-stop", source: "ctl", reply }),
  );
  assertEquals(quick.reply, { ok: true, message: "stopping quickly" });
  assertEquals(sim.killed(quick.effects, "SIGINT"), [100, 101]);
});

Deno.test("scale: replies from..to after acting, and the workers-changed effect fires the hook", () => {
  const sim = new Sim(settings({ workers: 2 }));
  sim.advance(SETTLE_MS);
  const up = ask(sim, (reply) => ({ type: "scale", workers: 4, reply }));
  assertEquals(up.reply, { ok: true, message: "workers 2 -> 4" });
  assertEquals(spawns(up.effects).map((e) => e.slot), [2, 3]);
  assert(up.effects.some((e) => e.type === "workers-changed" && e.from === 2 && e.to === 4));
  sim.advance(SETTLE_MS);
  const down = ask(sim, (reply) => ({ type: "scale", workers: 1, reply }));
  assertEquals(sim.killed(down.effects, "SIGTERM").length, 3, "the oldest three go");
  const same = ask(sim, (reply) => ({ type: "scale", workers: 1, reply }));
  assert(!has(same.effects, "workers-changed"));
});

Deno.test("upgrade: checked first, then exec; a failed check or exec changes nothing", () => {
  const sim = new Sim();
  sim.advance(SETTLE_MS);
  const usr2 = ask(sim, (reply) => ({ type: "request", action: "upgrade", source: "ctl", reply }));
  assert(usr2.reply.ok);
  assert(has(usr2.effects, "check-upgrade"));
  const again = ask(sim, (reply) => ({ type: "request", action: "upgrade", source: "ctl", reply }));
  assertEquals(again.reply, { ok: false, error: "an upgrade is already in progress" });
  const go = sim.send({ type: "upgrade-checked" });
  assert(go.some((e) => e.type === "exec-upgrade" && e.generation === 1));
  // The exec failed: the master carries on, and may upgrade again.
  const failed = sim.send({ type: "upgrade-checked", error: "execve: ENOENT" });
  assert(failed.some((e) => e.type === "log" && e.level === "error"));
  assertEquals(sim.pidsOf((w) => w.state === "ready"), [100, 101]);
  assert(has(sim.send({ type: "signal", signal: "SIGUSR2" }), "check-upgrade"));
  sim.send({ type: "upgrade-checked", error: "--check-config failed" });
  assert(has(sim.send({ type: "signal", signal: "SIGUSR2" }), "check-upgrade"));
});

Deno.test("inherited workers serve until the new image's generation is ready, then retire", () => {
  const sim = new Sim(settings({ workers: 2 }), { name: "new image" }, {
    inherited: { generation: 4, workers: [{ pid: 50, slot: 0 }, { pid: 51, slot: 1 }] },
  });
  sim.adoptInherited();
  const snap = sim.core.snapshot();
  assertEquals(snap.generation, 5, "the new image continues the numbering");
  assertEquals(snap.reloading, true);
  assertEquals(spawns(sim.effects).map((e) => [e.slot, e.generation]), [[0, 5], [1, 5]]);
  assertEquals(sim.pidsOf((w) => w.generation === 4 && w.state === "ready"), [50, 51]);
  // A reload is refused until the hand-over is complete.
  assert(!has(sim.send({ type: "signal", signal: "SIGHUP" }), "load-config"));
  const ready = sim.advance(SETTLE_MS);
  assertEquals(sim.killed(ready, "SIGTERM"), [50, 51]);
  sim.exit(50);
  const last = sim.exit(51);
  assert(last.some((e) => e.type === "retire-generation" && e.generation === 4));
  assert(has(sim.send({ type: "signal", signal: "SIGHUP" }), "load-config"));
});

Deno.test("STOPPING=1: the worker is counted as going and its replacement starts at once", () => {
  const sim = new Sim(settings({ workers: 1, gracefulTimeoutMs: 5000 }));
  sim.advance(SETTLE_MS);
  const effects = sim.send({
    type: "notify",
    serial: sim.serialOf.get(100)!,
    fields: { STOPPING: "1" },
  });
  assertEquals(spawns(effects).map((e) => e.slot), [0]);
  assertEquals(sim.killed(effects, "SIGTERM"), [], "it is leaving on its own: no signal");
  assertEquals(sim.killed(sim.advance(5000), "SIGKILL"), [100], "but it must leave in time");
  const exited = sim.exit(100, 0);
  assert(exited.some((e) => e.type === "log" && JSON.stringify(e.props).includes("STOPPING=1")));
  assertEquals(
    sim.core.snapshot().counters.restarts,
    0,
    "a worker that said it leaves is no restart",
  );
});

Deno.test("spawn failure: counted as a failed boot and retried with back-off", () => {
  const sim = new Sim(settings({ workers: 1 }));
  const serial = sim.serialOf.get(100)!;
  const failed = sim.send({ type: "spawn-failed", serial, error: "EAGAIN" });
  assertEquals(spawns(failed).length, 0, "not at once");
  assert(failed.some((e) => e.type === "log" && e.event === "worker.spawn_failed"));
  assertEquals(sim.core.nextDeadline(), sim.now + BACKOFF_BASE_MS);
  assertEquals(spawns(sim.advance(BACKOFF_BASE_MS)).map((e) => e.slot), [0]);
  assertEquals(sim.core.snapshot().counters.bootFailures, 1);
});

Deno.test("a slot that fails to boot the same way every time is said plainly, once, and shown", () => {
  const sim = new Sim(settings({ workers: 1 }));
  const cannot = (effects: Effect<Ctx>[]) =>
    effects.filter((e) => e.type === "log" && e.event === "worker.cannot_boot");
  let said = 0;
  for (let i = 0; i < 5; i++) {
    said += cannot(sim.exit(sim.pidsOf()[0], 1)).length;
    sim.advance(sim.core.nextDeadline()! - sim.now);
  }
  assertEquals(said, 1, "said once, at the third failure in a row");
  assertEquals(sim.core.snapshot().failing, [
    { slot: 0, what: "exit code 1", tries: 5, lastStderr: [] },
  ]);
  // Once a worker of the slot becomes ready, it could boot after all.
  sim.advance(SETTLE_MS);
  assertEquals(sim.core.snapshot().failing, []);
});

Deno.test("once two boots in a row failed alike, the next tries keep their stderr; 'cannot boot' shows it", () => {
  const sim = new Sim(settings({ workers: 1 }));
  assertEquals(spawns(sim.effects).map((e) => e.captureStderr), [false], "not while all is well");
  const lines = ["Traceback (most recent call last):", "OSError: [Errno 9] Bad file descriptor"];
  const logs: Effect<Ctx>[] = [];
  for (let i = 0; i < 3; i++) {
    const serial = sim.serialOf.get(sim.pidsOf()[0])!;
    // The first two tries' stderr was not kept (their spawns did not ask): no lines.
    const lastStderr = i < 2 ? undefined : lines;
    logs.push(...sim.send({ type: "exited", serial, code: 1, signal: null, lastStderr }));
    const respawn = sim.advance(sim.core.nextDeadline()! - sim.now);
    assertEquals(spawns(respawn).map((e) => e.captureStderr), [i >= 1]);
  }
  const said = logs.find((e) => e.type === "log" && e.event === "worker.cannot_boot");
  assert(said?.type === "log" && String(said.props?.output).includes(JSON.stringify(lines[1])));
  assertEquals(sim.core.snapshot().failing[0].lastStderr, lines);
  // A ready worker clears the record: its replacement's stderr is no longer kept.
  sim.advance(SETTLE_MS);
  assertEquals(sim.core.snapshot().failing, []);
});

Deno.test("boot failures that differ are not reported as 'cannot boot'", () => {
  const sim = new Sim(settings({ workers: 1 }));
  for (const code of [1, 2, 1, 2]) {
    sim.exit(sim.pidsOf()[0], code);
    sim.advance(sim.core.nextDeadline()! - sim.now);
  }
  assertEquals(sim.core.snapshot().failing, []);
});
