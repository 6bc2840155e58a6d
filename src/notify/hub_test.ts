/**
 * The notify hub with real senders: Python (plain SOCK_DGRAM), the real
 * `systemd-notify`, and the hub's life cycle (the stream channel:
 * hub_stream_test.ts). Every wait is on an event, never a sleep.
 */
import { tmpdir } from "node:os";
import {
  deepStrictEqual,
  match,
  notStrictEqual,
  ok,
  rejects,
  strictEqual,
} from "node:assert/strict";
import { MAX_SOCKET_PATH, notifyEnv, NotifyHub } from "./hub.ts";
import {
  connectStream,
  exists,
  mustSend,
  openHere,
  pySend,
  Recorder,
  run,
  SYSTEM_PYTHON,
  SYSTEMD_NOTIFY,
  waitClosedByPeer,
  withEnv,
  withHub,
  write,
} from "./_hub_testing.ts";

Deno.test("open() makes both sockets in a 0711 directory, mode 0600, and returns their paths", async () => {
  await withHub(async (hub) => {
    strictEqual(Deno.statSync(hub.dir).mode! & 0o777, 0o711);
    const ep = await openHere(hub, 7);
    deepStrictEqual(ep, { notifySocket: `${hub.dir}/7.sock`, streamSocket: `${hub.dir}/7.stream` });
    for (const p of [ep.notifySocket, ep.streamSocket]) {
      const st = Deno.statSync(p);
      ok(st.isSocket, p);
      strictEqual(st.mode! & 0o777, 0o600, p);
      ok(p.length <= MAX_SOCKET_PATH);
    }
    // Only the two public names are left: no staging file.
    deepStrictEqual([...Deno.readDirSync(hub.dir)].map((e) => e.name).sort(), [
      "7.sock",
      "7.stream",
    ]);
    deepStrictEqual(notifyEnv(ep), {
      NOTIFY_SOCKET: ep.notifySocket,
      ARBITER_NOTIFY_STREAM: ep.streamSocket,
    });
    await rejects(hub.open(7), /already open/);
    // Two opens of one serial at once: exactly one wins, and its sockets stay.
    const both = await Promise.allSettled([hub.open(8), hub.open(8)]);
    deepStrictEqual(both.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    ok(Deno.statSync(`${hub.dir}/8.sock`).isSocket);
  });
});

Deno.test("a Python SOCK_DGRAM sender: several assignments in one datagram are one message", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 1);
    await mustSend(ep.notifySocket, "READY=1\nSTATUS=ok");
    deepStrictEqual(await rec.nextMessage(), { serial: 1, fields: { READY: "1", STATUS: "ok" } });
    await mustSend(ep.notifySocket, "STATUS=a\n\nSTATUS=b\nWATCHDOG=1\n");
    deepStrictEqual(await rec.nextMessage(), {
      serial: 1,
      fields: { STATUS: "b", WATCHDOG: "1" },
    });
  });
});

const hasSystemdNotify = exists(SYSTEMD_NOTIFY);
Deno.test({
  name: hasSystemdNotify
    ? "the real systemd-notify talks to the datagram socket"
    : `SKIPPED: ${SYSTEMD_NOTIFY} is not installed (systemd-notify test)`,
  ignore: !hasSystemdNotify,
  fn: async () => {
    await withHub(async (hub, rec) => {
      const ep = await openHere(hub, 3);
      const env = { NOTIFY_SOCKET: ep.notifySocket };
      // As a shell script would: --pid=$$ names the script as the main pid.
      await run(["sh", "-c", `${SYSTEMD_NOTIFY} --pid=$$ READY=1`], env);
      const first = await rec.nextMessage();
      strictEqual(first.serial, 3);
      strictEqual(first.fields.READY, "1");
      match(first.fields.MAINPID, /^\d+$/);
      // systemd-notify then waits for a barrier (BARRIER=1 with an fd): the hub
      // closes the fd and does not pass the message on. That wait is also what
      // keeps it alive until the hub has checked who sent the message.

      await run([SYSTEMD_NOTIFY, "--status=serving", "STOPPING=1"], env);
      const status = await rec.nextMessage();
      strictEqual(status.fields.STATUS, "serving");
      strictEqual(status.fields.STOPPING, "1");
      // (--no-block skips the barrier: it may exit before the hub checks it, so it is not
      // tested here; see docs/worker-protocol.md.)
    });
  },
});

Deno.test("garbage datagrams are reported and the socket keeps working", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 2);
    await mustSend(ep.notifySocket, "hello");
    match((await rec.nextGarbage()).why, /without "="/);
    await mustSend(ep.notifySocket, "READY=1\nready=1");
    match((await rec.nextGarbage()).why, /bad key/);
    await mustSend(ep.notifySocket, new Uint8Array([0x53, 0x3d, 0xff]));
    match((await rec.nextGarbage()).why, /UTF-8/);
    await mustSend(ep.notifySocket, "STATUS=" + "x".repeat(5000));
    match((await rec.nextGarbage()).why, /over 4096 bytes/);
    await mustSend(ep.notifySocket, "STATUS=" + "x".repeat(60_000));
    deepStrictEqual(await rec.nextGarbage(), { serial: 2, why: "message over 4096 bytes" });
    // Empty datagrams are no message at all (and no garbage).
    await mustSend(ep.notifySocket, "");
    await mustSend(ep.notifySocket, "READY=1");
    deepStrictEqual(await rec.nextMessage(), { serial: 2, fields: { READY: "1" } });
    ok(rec.drained);
  });
});

Deno.test("messages are attributed by the socket they arrive on", async () => {
  await withHub(async (hub, rec) => {
    const a = await openHere(hub, 11);
    const b = await openHere(hub, 12);
    // Whatever the sender claims, the socket decides.
    await mustSend(b.notifySocket, "READY=1\nMAINPID=1");
    deepStrictEqual(await rec.nextMessage(), { serial: 12, fields: { READY: "1", MAINPID: "1" } });
    await mustSend(a.notifySocket, "STATUS=I am a");
    deepStrictEqual(await rec.nextMessage(), { serial: 11, fields: { STATUS: "I am a" } });
    using sb = await connectStream(b.streamSocket);
    using sa = await connectStream(a.streamSocket);
    await write(sb, "STATUS=b stream\n");
    deepStrictEqual(await rec.nextMessage(), { serial: 12, fields: { STATUS: "b stream" } });
    await write(sa, "STATUS=a stream\n");
    deepStrictEqual(await rec.nextMessage(), { serial: 11, fields: { STATUS: "a stream" } });
    await mustSend(a.notifySocket, "WATCHDOG=1");
    deepStrictEqual(await rec.nextMessage(), { serial: 11, fields: { WATCHDOG: "1" } });
    deepStrictEqual(hub.serials.sort(), [11, 12]);
  });
});

Deno.test("close() stops one worker's channel and removes its files; others keep working", async () => {
  await withHub(async (hub, rec) => {
    const a = await openHere(hub, 21);
    const b = await openHere(hub, 22);
    using conn = await connectStream(a.streamSocket);
    await write(conn, "READY=1\n");
    deepStrictEqual(await rec.nextMessage(), { serial: 21, fields: { READY: "1" } });
    hub.close(21);
    hub.close(21); // twice is harmless
    ok(!exists(a.notifySocket));
    ok(!exists(a.streamSocket));
    ok(exists(b.notifySocket));
    await waitClosedByPeer(conn); // its open connections are closed too
    const r = await pySend(a.notifySocket, "READY=1");
    notStrictEqual(r.code, 0);
    match(r.stderr, /FileNotFoundError|ConnectionRefusedError/);
    await mustSend(b.notifySocket, "READY=1");
    deepStrictEqual(await rec.nextMessage(), { serial: 22, fields: { READY: "1" } });
    // A serial can be opened again after close().
    const again = await openHere(hub, 21);
    await mustSend(again.notifySocket, "STATUS=back");
    deepStrictEqual(await rec.nextMessage(), { serial: 21, fields: { STATUS: "back" } });
    ok(rec.drained);
  });
});

Deno.test("closeAll() closes everything and removes the directory; open() then fails", async () => {
  const rec = new Recorder();
  const hub = await NotifyHub.create(tmpdir(), rec.onMessage, rec.onGarbage);
  const ep = await openHere(hub, 1);
  await openHere(hub, 2);
  using conn = await connectStream(ep.streamSocket);
  await write(conn, "READY=1\n");
  await rec.nextMessage();
  await hub.closeAll();
  ok(!exists(hub.dir));
  await waitClosedByPeer(conn);
  await rejects(hub.open(3), /closed/);
  await hub.closeAll(); // twice is harmless
  ok(rec.drained); // closing is not garbage
});

Deno.test("a throwing onMessage is reported as garbage and the channel goes on", async () => {
  const garbage: string[] = [];
  let calls = 0;
  let wake: () => void = () => {};
  const hub = await NotifyHub.create(
    tmpdir(),
    () => {
      calls++;
      wake();
      throw new Error("boom");
    },
    (_s, why) => {
      garbage.push(why);
      wake();
    },
  );
  try {
    const ep = await openHere(hub, 1);
    const wait = (n: number) =>
      new Promise<void>((r) => {
        wake = () => calls >= n && garbage.length >= n && r();
        wake();
      });
    await mustSend(ep.notifySocket, "READY=1");
    await wait(1);
    await mustSend(ep.notifySocket, "READY=1");
    await wait(2);
    deepStrictEqual(garbage, ["notify handler failed: boom", "notify handler failed: boom"]);
  } finally {
    await hub.closeAll();
  }
});

const isRoot = Deno.uid() === 0;
const hasSetpriv = exists("/usr/bin/setpriv") && exists(SYSTEM_PYTHON);
Deno.test({
  name: isRoot && hasSetpriv
    ? "open() with an owner: a worker of another user can send; without one it cannot"
    : "SKIPPED: needs root, /usr/bin/setpriv and /usr/bin/python3 (owner test)",
  ignore: !(isRoot && hasSetpriv),
  fn: async () => {
    // The directory must be reachable by the other user: use the temp dir.
    await withEnv({ XDG_RUNTIME_DIR: undefined }, async () => {
      await withHub(async (hub, rec) => {
        const mine = await openHere(hub, 1);
        const theirs = await openHere(hub, 2, { uid: 65534, gid: 65534 });
        const st = Deno.statSync(theirs.notifySocket);
        deepStrictEqual([st.uid, st.gid, st.mode! & 0o777], [65534, 65534, 0o600]);
        strictEqual(Deno.statSync(theirs.streamSocket).uid, 65534);
        const ok2 = await pySend(theirs.notifySocket, "READY=1", { asNobody: true });
        strictEqual(ok2.code, 0, ok2.stderr);
        deepStrictEqual(await rec.nextMessage(), { serial: 2, fields: { READY: "1" } });
        const denied = await pySend(mine.notifySocket, "READY=1", { asNobody: true });
        notStrictEqual(denied.code, 0);
        match(denied.stderr, /PermissionError/);
        ok(rec.drained);
      });
    });
  },
});

Deno.test("closeAll() while workers' sockets are still being made leaves no directory behind", async () => {
  // A TERM during a crash loop: spawns are opening their sockets as the master closes.
  for (let round = 0; round < 20; round++) {
    const rec = new Recorder();
    const hub = await NotifyHub.create(tmpdir(), rec.onMessage, rec.onGarbage);
    const opening = Array.from({ length: 20 }, (_, i) => hub.open(100 + i).catch(() => {}));
    await new Promise((resolve) => setTimeout(resolve, round % 5)); // some opens half-way
    await hub.closeAll();
    await Promise.all(opening);
    ok(!exists(hub.dir), `round ${round}: the notify directory is gone`);
  }
});
