// The executor's worker processes on a fake OS: what each effect does to
// processes and which events come back. The same on real processes: tests/.
import { LineSink } from "../output/sink.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { SelfInvocation } from "../spawn/self.ts";
import { EventLog, fakeContext, FakeHub, FakeOs } from "./_testing.ts";
import { WorkerProcesses } from "./workers.ts";

const self: SelfInvocation = { executable: "/usr/bin/arbiter", args: [], compiled: false };

async function setUp() {
  const os = new FakeOs();
  const hub = new FakeHub();
  const log = new EventLog();
  const discard = { write: (p: Uint8Array) => Promise.resolve(p.length) };
  const [stdout, stderr] = [new LineSink(discard), new LineSink(discard)];
  const workers = new WorkerProcesses({
    push: log.push,
    hub,
    os,
    self,
    shimEnv: {},
    stdout,
    stderr,
  });
  return { os, hub, log, workers, context: await fakeContext() };
}

Deno.test("spawn: a process with the slot's id and its notify endpoints, answered by spawned", async () => {
  const { os, hub, log, workers, context } = await setUp();
  await workers.spawn({ serial: 7, slot: 2, generation: 1, context });
  const child = os.children[0];
  assertEquals(await log.next("spawned"), { type: "spawned", serial: 7, pid: child.pid });
  assertEquals(hub.pids.get(7), child.pid, "its notify sockets accept only this process");
  const env = child.launch.spec.env;
  assertEquals(env.ARBITER_WORKER_ID, "2");
  assertEquals(env.NOTIFY_SOCKET, "/fake/7/notify");
  assertEquals(workers.get(7)?.pid, child.pid);
});

Deno.test("spawn: timeout > 0 gives the worker WATCHDOG_USEC in whole microseconds", async () => {
  const { os, workers } = await setUp();
  await workers.spawn({
    serial: 1,
    slot: 0,
    generation: 1,
    context: await fakeContext({ timeout: 2.5 }),
  });
  assertEquals(os.children[0].launch.spec.env.WATCHDOG_USEC, "2500000");
  assertEquals(os.children[0].launch.spec.pidEnv, ["WATCHDOG_PID"]);
});

Deno.test("spawn that cannot create a process answers spawn-failed and keeps no record", async () => {
  const { os, log, workers, context } = await setUp();
  os.failNextSpawn = new Error("ENOEXEC");
  await workers.spawn({ serial: 3, slot: 0, generation: 1, context });
  const failed = await log.next("spawn-failed");
  assertEquals(failed.serial, 3);
  assert(failed.error.includes("ENOEXEC"));
  assertEquals(workers.get(3), undefined);
});

Deno.test("an exit comes back as an exited event; the record stays until forgotten", async () => {
  const { os, hub, log, workers, context } = await setUp();
  await workers.spawn({ serial: 1, slot: 0, generation: 1, context });
  os.children[0].exit(0, "SIGTERM");
  assertEquals(await log.next("exited"), {
    type: "exited",
    serial: 1,
    code: 0,
    signal: "SIGTERM",
    lastStderr: undefined,
  });
  assert(workers.get(1), "kept until the core says worker-gone");
  workers.forget(1);
  assertEquals(workers.get(1), undefined);
  assert(!hub.open_.has(1), "its notify endpoint is closed with it");
});

Deno.test("kill goes through the child that was started; after its exit it is a no-op", async () => {
  const { os, workers, context } = await setUp();
  await workers.spawn({ serial: 1, slot: 0, generation: 1, context });
  workers.kill(1, "SIGTERM");
  assertEquals(os.children[0].signals, ["SIGTERM"]);
  os.children[0].exit(0, "SIGTERM");
  workers.kill(1, "SIGKILL"); // must not throw
  workers.kill(99, "SIGKILL"); // unknown: nothing
  assertEquals(os.children[0].signals, ["SIGTERM"]);
});

Deno.test("inherited workers: signalled by pid only until reaped; their exits come from reaping", async () => {
  const { os, log, workers, context } = await setUp();
  os.foreign.add(50);
  workers.adopt([{ serial: 1, pid: 50, slot: 0, generation: 4 }], context);
  workers.kill(1, "SIGTERM");
  assertEquals(os.signalled, [{ pid: 50, signal: "SIGTERM" }]);
  workers.reapForeign();
  assertEquals(log.events.length, 0, "nothing exited yet");
  os.zombies.set(50, { code: 0, signal: "SIGTERM" });
  os.zombies.set(77, { code: 1, signal: null }); // an orphan: reaped, not reported
  workers.reapForeign();
  assertEquals(log.events, [{ type: "exited", serial: 1, code: 0, signal: "SIGTERM" }]);
  workers.kill(1, "SIGKILL");
  assertEquals(os.signalled.length, 1, "a reaped pid may be reused: never signalled again");
});

Deno.test("captureStderr: the exited event carries the last lines, waiting a bounded time for them", async () => {
  const { os, log, workers, context } = await setUp();
  await workers.spawn({ serial: 1, slot: 0, generation: 1, context, captureStderr: true });
  const child = os.children[0];
  assertEquals(child.launch.stderr, "piped");
  child.writeStderr("Traceback:\nImportError: no module named app\n");
  child.exit(1);
  const exited = await log.next("exited");
  assertEquals(exited.lastStderr, ["Traceback:", "ImportError: no module named app"]);
  assertEquals(os.armed, 0, "the wait for late output is cleared");
});

Deno.test("listenersInUse: every listener a live worker holds", async () => {
  const { workers } = await setUp();
  const a = { fd: 3 } as never, b = { fd: 4 } as never;
  const base = await fakeContext();
  workers.adopt([{ serial: 1, pid: 50, slot: 0, generation: 1 }], { ...base, listeners: [a] });
  workers.adopt([{ serial: 2, pid: 51, slot: 1, generation: 2 }], { ...base, listeners: [a, b] });
  assertEquals(workers.listenersInUse(), new Set([a, b]));
  workers.forget(2);
  assertEquals(workers.listenersInUse(), new Set([a]));
});
