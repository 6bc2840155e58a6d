// worker_usr1 in the core: whether USR1 is forwarded is decided per worker,
// from the settings of its own generation.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "./core.ts";
import { settings, Sim } from "./_testing.ts";

Deno.test('worker_usr1 "send" and "blocked" forward USR1; "off" only reopens the logs', () => {
  for (const workerUsr1 of ["send", "blocked", undefined] as const) {
    const sim = new Sim(settings({ workerUsr1 }));
    sim.advance(SETTLE_MS);
    const usr1 = sim.send({ type: "signal", signal: "SIGUSR1" });
    assertEquals(sim.killed(usr1, "SIGUSR1"), [100, 101], `${workerUsr1}`);
  }
  const off = new Sim(settings({ workerUsr1: "off", ready: "notify" }));
  off.send({ type: "notify", serial: off.serialOf.get(100)!, fields: { READY: "1" } });
  const usr1 = off.send({ type: "signal", signal: "SIGUSR1" });
  assert(usr1.some((e) => e.type === "reopen-logs"), "the master still reopens its own log");
  assertEquals(off.killed(usr1, "SIGUSR1"), []);
  // Nor is it kept for the booting one.
  const ready = off.send({
    type: "notify",
    serial: off.serialOf.get(101)!,
    fields: { READY: "1" },
  });
  assertEquals(off.killed(ready, "SIGUSR1"), []);
});

Deno.test("a reload applies worker_usr1 to the new generation only", () => {
  const sim = new Sim(settings({ workerUsr1: "off" }));
  sim.advance(SETTLE_MS);
  sim.send({ type: "signal", signal: "SIGHUP" });
  sim.send({
    type: "config-loaded",
    settings: settings({ workerUsr1: "send" }),
    context: { name: "gen2" },
  });
  // The old generation (off) still serves, the new one (send) boots: USR1 waits for the new ones.
  const usr1 = sim.send({ type: "signal", signal: "SIGUSR1" });
  assertEquals(sim.killed(usr1, "SIGUSR1"), []);
  const ready = sim.advance(SETTLE_MS);
  assertEquals(sim.killed(ready, "SIGUSR1"), [102, 103]);
  assertEquals(sim.killed(ready, "SIGTERM"), [100, 101]);
});
