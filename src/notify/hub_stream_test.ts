/**
 * The notify hub's stream channel (`ARBITER_NOTIFY_STREAM`), for runtimes
 * that cannot send unix datagrams: a Node client and the Node example
 * worker, Deno clients for the line limit and the connection limit. Every
 * wait is on an event, never a sleep.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import {
  type ArbiterProcess,
  httpGetJson,
  startArbiter,
  WORKERS_DIR,
} from "../../tests/_harness.ts";
import { MAX_STREAM_CONNECTIONS, notifyEnv } from "./hub.ts";
import {
  connectStream,
  openHere,
  waitClosedByPeer,
  waitFor,
  withHub,
  write,
} from "./_hub_testing.ts";

Deno.test("a Node client on the stream channel: each line is its own message", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 5);
    // The client stays until its stdin closes: the hub checks who connected when it
    // accepts, and a client already gone by then would not count.
    const script = `
      const net = require("node:net");
      const c = net.createConnection(process.env.ARBITER_NOTIFY_STREAM);
      c.write("READY=1\\nSTATUS=from node\\n");
      c.end("WATCHDOG=1\\n");
      process.stdin.resume();
    `;
    const node = new Deno.Command("node", {
      args: ["-e", script],
      env: notifyEnv(ep),
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    deepStrictEqual(await rec.nextMessage(), { serial: 5, fields: { READY: "1" } });
    deepStrictEqual(await rec.nextMessage(), { serial: 5, fields: { STATUS: "from node" } });
    deepStrictEqual(await rec.nextMessage(), { serial: 5, fields: { WATCHDOG: "1" } });
    await node.stdin.close();
    strictEqual((await node.status).code, 0);
  });
});

/** The Node example worker under the stand-in master (`launch.py`), on 127.0.0.1, with `env`. */
function startNodeNotify(env: Record<string, string>): ArbiterProcess {
  const launch = ["python3", `${WORKERS_DIR}/launch.py`, "--bind", "127.0.0.1:0", "--"];
  return startArbiter([], { cmd: [...launch, "node", `${WORKERS_DIR}/node_notify.mjs`], env });
}

Deno.test("tests/workers/node_notify.mjs: READY=1, WATCHDOG=1, serves fd 3, STOPPING=1 and exit 0 on TERM", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 9);
    await using worker = startNodeNotify({
      ARBITER_NOTIFY_STREAM: ep.streamSocket,
      WATCHDOG_USEC: "100000",
    });
    deepStrictEqual(await rec.nextMessage(), { serial: 9, fields: { READY: "1" } });
    deepStrictEqual(await rec.nextMessage(), { serial: 9, fields: { WATCHDOG: "1" } });
    deepStrictEqual(await rec.nextMessage(), { serial: 9, fields: { WATCHDOG: "1" } });
    const addr = (await worker.waitForLog(/launch: fd 3 = (\S+)/))[1];
    await worker.waitForLog(/worker 0 pid \d+ listening/, { stream: "stdout" });
    const body = await httpGetJson<{ pid: number; worker_id: number; lang: string }>(
      `http://${addr}/`,
    );
    deepStrictEqual(body, { pid: worker.pid, worker_id: 0, lang: "node" });
    worker.signal("SIGTERM");
    // Pings may still be queued before STOPPING=1.
    let r = await rec.nextMessage();
    while (r.fields.WATCHDOG === "1") r = await rec.nextMessage();
    deepStrictEqual(r, { serial: 9, fields: { STOPPING: "1" } });
    strictEqual((await worker.waitExit()).code, 0);
  });
});

Deno.test("node_notify.mjs sends no WATCHDOG=1 with NO_WATCHDOG=1", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 10);
    await using worker = startNodeNotify({
      ARBITER_NOTIFY_STREAM: ep.streamSocket,
      WATCHDOG_USEC: "20000",
      NO_WATCHDOG: "1",
    });
    deepStrictEqual(await rec.nextMessage(), { serial: 10, fields: { READY: "1" } });
    const readyAt = performance.now();
    // Keep it busy for well over a few ping intervals (10 ms) before stopping it.
    const addr = (await worker.waitForLog(/launch: fd 3 = (\S+)/))[1];
    while (performance.now() - readyAt < 100) await httpGetJson(`http://${addr}/`);
    worker.signal("SIGTERM");
    // The next message after READY=1 is STOPPING=1: no ping came in between.
    deepStrictEqual(await rec.nextMessage(), { serial: 10, fields: { STOPPING: "1" } });
    strictEqual((await worker.waitExit()).code, 0);
  });
});

Deno.test("stream channel: an over-long line is garbage and closes that connection only", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 4);
    using good = await connectStream(ep.streamSocket);
    using bad = await connectStream(ep.streamSocket);
    await write(good, "STATUS=first\n");
    deepStrictEqual(await rec.nextMessage(), { serial: 4, fields: { STATUS: "first" } });
    // Split across writes, with no newline: refused once it passes the limit.
    await write(bad, "STATUS=" + "y".repeat(3000));
    await write(bad, "y".repeat(3000));
    match((await rec.nextGarbage()).why, /line over 4096 bytes; closed/);
    await waitClosedByPeer(bad);
    // A garbage line that fits is reported, and the connection stays.
    await write(good, "nonsense\n\n");
    match((await rec.nextGarbage()).why, /without "="/);
    await write(good, "READY=1\n");
    deepStrictEqual(await rec.nextMessage(), { serial: 4, fields: { READY: "1" } });
    // A line split over several writes is one message; a last line without newline counts.
    await write(good, "STAT");
    await write(good, "US=split\nWATCH");
    await write(good, "DOG=1");
    deepStrictEqual(await rec.nextMessage(), { serial: 4, fields: { STATUS: "split" } });
    await good.closeWrite();
    deepStrictEqual(await rec.nextMessage(), { serial: 4, fields: { WATCHDOG: "1" } });
    await waitClosedByPeer(good);
    // A line of exactly 4096 bytes is fine, one over is not.
    using edge = await connectStream(ep.streamSocket);
    const v = "z".repeat(4096 - "STATUS=".length);
    await write(edge, `STATUS=${v}\n`);
    deepStrictEqual(await rec.nextMessage(), { serial: 4, fields: { STATUS: v } });
    await write(edge, `STATUS=${v}z\n`);
    match((await rec.nextGarbage()).why, /line over 4096 bytes/);
    await waitClosedByPeer(edge);
    ok(rec.drained);
  });
});

Deno.test("stream channel: at most MAX_STREAM_CONNECTIONS connections per worker", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 6);
    const conns: Deno.UnixConn[] = [];
    try {
      for (let i = 0; i < MAX_STREAM_CONNECTIONS; i++) {
        const c = await connectStream(ep.streamSocket);
        conns.push(c);
        // A message per connection proves it has been accepted.
        await write(c, `STATUS=${i}\n`);
        deepStrictEqual(await rec.nextMessage(), { serial: 6, fields: { STATUS: String(i) } });
      }
      using extra = await connectStream(ep.streamSocket);
      match((await rec.nextGarbage()).why, /more than 32 notify stream connections/);
      await waitClosedByPeer(extra);
      // Once one closes, a new one is taken again.
      conns.shift()!.close();
      const again = await waitFor(async () => {
        const c = await connectStream(ep.streamSocket);
        await write(c, "READY=1\n");
        const r = await rec.next();
        if (r.kind === "message") return c;
        c.close();
        return undefined;
      });
      conns.push(again);
    } finally {
      for (const c of conns) c.close();
    }
  });
});
