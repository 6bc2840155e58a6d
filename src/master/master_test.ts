// The master's loop and effect handling on a fake OS: a real core and
// notify hub, but workers and listeners that are records and a clock that
// moves when told. The same scenarios on real processes: tests/.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "../core/core.ts";
import { startFakeMaster as startMaster } from "./_testing.ts";

Deno.test("master on a fake OS: spawns, replaces a dead worker in its slot, stops on TERM", async () => {
  const { os, exit } = await startMaster(2);
  const [a, b] = await os.started(2);
  await os.armedTimer();
  assertEquals([a, b].map((c) => c.launch.spec.env.ARBITER_WORKER_ID), ["0", "1"]);
  assertEquals(a.launch.spec.fds.length, 1, "the listener is passed");

  os.advance(SETTLE_MS); // the core's settle deadline, through the one timer
  a.exit(1);
  const [, , replacement] = await os.started(3);
  assertEquals(replacement.launch.spec.env.ARBITER_WORKER_ID, "0", "the same slot");

  os.signals.send("SIGTERM");
  for (const child of [b, replacement]) {
    assertEquals(await child.signalled(), ["SIGTERM"]);
    child.exit(0, "SIGTERM");
  }
  assertEquals(await exit, 0);
  assert(os.armed === 0, "no timer is left armed");
});

Deno.test("master on a fake OS: a pause part-way through an event is a stall, not a boot timeout", async () => {
  const { os, exit } = await startMaster(1, { ready: "notify", boot_timeout: 5 });
  const [a] = await os.started(1);
  await os.armedTimer();
  // The master is paused for 10 s while it starts a second worker: a's boot
  // deadline (5 s) passes while the master cannot run, not while a boots.
  os.pauseInNextSpawnMs = 10_000;
  os.signals.send("SIGTTIN");
  const [, b] = await os.started(2);
  await os.timerDue(10_000);
  os.advance(0);
  await os.timerDue(15_000); // re-armed: each keeps the 5 s it had when the pause began
  assertEquals([a.signals, b.signals], [[], []]);
  os.advance(4_999);
  assertEquals([a.signals, b.signals], [[], []]);
  os.signals.send("SIGTERM");
  for (const child of [a, b]) {
    assertEquals(await child.signalled(), ["SIGTERM"]);
    child.exit(0, "SIGTERM");
  }
  assertEquals(await exit, 0);
});

Deno.test("master on a fake OS: a silent worker past boot_timeout is aborted, then SIGKILLed", async () => {
  const { os, exit } = await startMaster(1, { ready: "notify", boot_timeout: 5 });
  const [a] = await os.started(1);
  await os.armedTimer();
  os.advance(5_000);
  assertEquals(await a.signalled(), ["SIGABRT"]);
  const [, replacement] = await os.started(2); // its slot is free at once: it is stopping
  await os.armedTimer();
  os.advance(1_000); // its short grace runs out
  assertEquals(await a.signalled(2), ["SIGABRT", "SIGKILL"]);
  a.exit(0, "SIGKILL");
  os.signals.send("SIGTERM");
  assertEquals(await replacement.signalled(), ["SIGTERM"]);
  replacement.exit(0, "SIGTERM");
  assertEquals(await exit, 0);
});
