// The executor's effects at the listeners, on a fake OS (sockets as records,
// a clock that moves when told): the stop's handshake filter, its fallback
// and the drain before SIGTERM; a dead listener restored; the listeners an
// in-place upgrade handed over released at start-up. The same scenarios on
// real sockets: tests/stop_test.ts, tests/upgrade_test.ts.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { SETTLE_MS } from "../core/core.ts";
import { DRAIN_POLL_MS } from "../core/stop.ts";
import { type FakeChild, type FakeOs, startFakeMaster } from "./_testing.ts";

/** The next drain read: waits for its deadline to be armed, then moves the clock to it. */
async function nextDrainRead(os: FakeOs, reads: number): Promise<void> {
  await os.timerDue(os.clock + DRAIN_POLL_MS);
  os.advance(DRAIN_POLL_MS);
  await os.sockets.journaled("read queues", reads);
}

/** One ready worker on one listener (fd 100), with `queued` connections waiting. */
async function readyWorker(
  queued: number,
): Promise<{ os: FakeOs; a: FakeChild; exit: Promise<number> }> {
  const { os, exit } = await startFakeMaster(1);
  const [a] = await os.started(1);
  await os.timerDue(SETTLE_MS);
  os.advance(SETTLE_MS); // ready: alive past the settle delay
  os.sockets.bound("127.0.0.1:0").queued = queued;
  return { os, a, exit };
}

async function stopAfterDrain(os: FakeOs, a: FakeChild, exit: Promise<number>): Promise<void> {
  await os.sockets.journaled("read queues", 1);
  await nextDrainRead(os, 2);
  assertEquals(a.signals, [], "no SIGTERM while connections wait");
  os.sockets.bound("127.0.0.1:0").queued = 0;
  await nextDrainRead(os, 3);
  assertEquals(await a.signalled(), ["SIGTERM"]);
  a.exit(0, "SIGTERM");
  assertEquals(await exit, 0);
}

Deno.test("stop on a fake OS: the filter goes on, the queues drain, then SIGTERM", async () => {
  const { os, a, exit } = await readyWorker(2);
  os.signals.send("SIGTERM");
  await os.sockets.journaled("filter 100");
  assertEquals(a.signals, [], "the workers keep serving while the queue drains");
  const socket = os.sockets.bound("127.0.0.1:0");
  assert(socket.filtered && socket.backlog > 0, "the filter, not the fallback");
  await stopAfterDrain(os, a, exit);
  assertEquals(os.sockets.journal.at(-1), "close 100", "closed at exit");
});

Deno.test("stop on a fake OS: a refused filter falls back to listen(fd, 0)", async () => {
  const { os, a, exit } = await readyWorker(1);
  os.sockets.refuseFilter = new Error("EPERM: operation not permitted");
  os.signals.send("SIGTERM");
  await os.sockets.journaled("listen 100 0");
  const socket = os.sockets.bound("127.0.0.1:0");
  assert(!socket.filtered, "no filter was attached");
  assertEquals(socket.backlog, 0);
  await stopAfterDrain(os, a, exit);
});

Deno.test("listener on a fake OS: one a worker shut down is restored for the next workers", async () => {
  const { os, exit } = await startFakeMaster(1);
  const [a] = await os.started(1);
  await os.armedTimer();
  assertEquals(a.launch.spec.fds, [100]);
  os.sockets.sockets.get(100)!.listening = false; // a worker called shutdown() on it
  a.exit(1);
  const [, replacement] = await os.started(2);
  assertEquals(replacement.launch.spec.fds, [101], "the fresh socket");
  assert(os.sockets.sockets.get(100)!.closed, "the dead one is closed");
  assertEquals(os.sockets.bound("127.0.0.1:0").fd, 101);
  os.signals.send("SIGTERM");
  assertEquals(await replacement.signalled(), ["SIGTERM"]);
  replacement.exit(0, "SIGTERM");
  assertEquals(await exit, 0);
});

Deno.test("upgrade on a fake OS: a handed-over listener the new config dropped is released at start-up", async () => {
  const { os, exit } = await startFakeMaster(1, {}, {
    upgrade: {
      state: {
        version: 1,
        masterPid: Deno.pid,
        startedAt: Date.now(),
        generation: 3,
        listeners: [{ fd: 7, text: "127.0.0.1:9000" }],
        workers: [],
      },
      warnings: [],
    },
  });
  const [a] = await os.started(1);
  assertEquals(a.launch.spec.fds, [100], "the new config's listener only");
  assert(os.sockets.sockets.get(7)!.closed, "the dropped bind is closed");
  assertEquals(os.sockets.journal.indexOf("close 7") >= 0, true);
  await os.armedTimer();
  os.signals.send("SIGTERM");
  assertEquals(await a.signalled(), ["SIGTERM"]);
  a.exit(0, "SIGTERM");
  assertEquals(await exit, 0);
});
