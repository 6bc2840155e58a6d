/**
 * The notify hub with real senders: Python (plain SOCK_DGRAM), the real
 * `systemd-notify`, Node over the stream channel (and the Node example
 * worker), Deno stream clients. Every wait is on an event, never a sleep.
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
import { httpGetJson, startArbiter, WORKERS_DIR } from "../../tests/_harness.ts";
import { MAX_SOCKET_PATH, MAX_STREAM_CONNECTIONS, notifyEnv, NotifyHub } from "./hub.ts";

const SYSTEMD_NOTIFY = "/usr/bin/systemd-notify";
const SYSTEM_PYTHON = "/usr/bin/python3";
const WAIT_MS = 10_000;

type Received =
  | { kind: "message"; serial: number; fields: Record<string, string> }
  | { kind: "garbage"; serial: number; why: string };

/** Records what the hub reports and lets a test wait for the next matching report. */
class Recorder {
  readonly seen: Received[] = [];
  #cursor = 0;
  #wake?: () => void;

  onMessage = (serial: number, fields: Record<string, string>): void => {
    this.seen.push({ kind: "message", serial, fields });
    this.#wake?.();
  };
  onGarbage = (serial: number, why: string): void => {
    this.seen.push({ kind: "garbage", serial, why });
    this.#wake?.();
  };

  /** The next report after the last one returned; fails after WAIT_MS. */
  async next(): Promise<Received> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (this.#cursor >= this.seen.length) {
        await new Promise<void>((resolve, reject) => {
          this.#wake = resolve;
          timer = setTimeout(
            () => reject(new Error(`no notify report within ${WAIT_MS} ms`)),
            WAIT_MS,
          );
        });
        clearTimeout(timer);
      }
    } finally {
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.seen[this.#cursor++];
  }

  async nextMessage(): Promise<{ serial: number; fields: Record<string, string> }> {
    const r = await this.next();
    if (r.kind !== "message") throw new Error(`expected a message, got ${JSON.stringify(r)}`);
    return { serial: r.serial, fields: r.fields };
  }

  async nextGarbage(): Promise<{ serial: number; why: string }> {
    const r = await this.next();
    if (r.kind !== "garbage") throw new Error(`expected garbage, got ${JSON.stringify(r)}`);
    return { serial: r.serial, why: r.why };
  }

  /** Nothing unread. */
  get drained(): boolean {
    return this.#cursor === this.seen.length;
  }
}

/** Opens a channel whose worker is this test process (so it and its children may send). */
async function openHere(hub: NotifyHub, serial: number, owner?: { uid: number; gid?: number }) {
  const ep = await hub.open(serial, owner);
  hub.setWorkerPid(serial, Deno.pid);
  return ep;
}

async function withHub(fn: (hub: NotifyHub, rec: Recorder) => Promise<void>): Promise<void> {
  const rec = new Recorder();
  const hub = await NotifyHub.create(tmpdir(), rec.onMessage, rec.onGarbage);
  try {
    await fn(hub, rec);
  } finally {
    await hub.closeAll();
  }
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// Sends, then waits on a barrier as sd_notify_barrier() does: the hub checks a
// sender by /proc while it handles the datagram, so a sender that exits at once
// might be gone by then (see sender.ts); the barrier keeps it alive until then.
const PY_SEND = "import array, os, select, socket, sys\n" +
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n" +
  "s.sendto(bytes.fromhex(sys.argv[2]), sys.argv[1])\n" +
  "r, w = os.pipe()\n" +
  "s.sendmsg([b'BARRIER=1'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [w]).tobytes())], 0, sys.argv[1])\n" +
  "os.close(w)\n" +
  "select.select([r], [], [], 10)\n";

/** Sends one datagram from a Python process; resolves to its exit code and stderr. */
async function pySend(
  path: string,
  payload: string | Uint8Array,
  opts: { asNobody?: boolean } = {},
): Promise<{ code: number; stderr: string }> {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const argv = ["python3", "-c", PY_SEND, path, hex(data)];
  const cmd = opts.asNobody
    ? [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      SYSTEM_PYTHON,
      ...argv.slice(1),
    ]
    : argv;
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "null",
    stderr: "piped",
  })
    .output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function mustSend(path: string, payload: string | Uint8Array): Promise<void> {
  const r = await pySend(path, payload);
  strictEqual(r.code, 0, r.stderr);
}

async function run(cmd: string[], env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  strictEqual(out.code, 0, `${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Connects to a stream channel from Deno. */
function connectStream(path: string): Promise<Deno.UnixConn> {
  return Deno.connect({ transport: "unix", path });
}

async function write(conn: Deno.Conn, text: string | Uint8Array): Promise<void> {
  const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Resolves once the peer has closed `conn` (EOF or reset). */
async function waitClosedByPeer(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16);
  try {
    while ((await conn.read(buf)) !== null) { /* nothing is ever sent */ }
  } catch {
    // Reset: closed too.
  }
}

// ---------------------------------------------------------------------------

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

Deno.test("tests/workers/node_notify.mjs: READY=1, WATCHDOG=1, serves fd 3, STOPPING=1 and exit 0 on TERM", async () => {
  await withHub(async (hub, rec) => {
    const ep = await openHere(hub, 9);
    await using worker = startArbiter([], {
      cmd: [
        "python3",
        `${WORKERS_DIR}/launch.py`,
        "--bind",
        "127.0.0.1:0",
        "--",
        "node",
        `${WORKERS_DIR}/node_notify.mjs`,
      ],
      env: { ARBITER_NOTIFY_STREAM: ep.streamSocket, WATCHDOG_USEC: "100000" },
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
    await using worker = startArbiter([], {
      cmd: [
        "python3",
        `${WORKERS_DIR}/launch.py`,
        "--bind",
        "127.0.0.1:0",
        "--",
        "node",
        `${WORKERS_DIR}/node_notify.mjs`,
      ],
      env: { ARBITER_NOTIFY_STREAM: ep.streamSocket, WATCHDOG_USEC: "20000", NO_WATCHDOG: "1" },
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

/** Retries `probe` (each try waits on an event) up to a few times. */
async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 50; i++) {
    const v = await probe();
    if (v !== undefined) return v;
  }
  throw new Error("waitFor: gave up");
}

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

async function withEnv(
  vars: Record<string, string | undefined>,
  fn: () => Promise<void>,
): Promise<void> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) Deno.env.delete(k);
      else Deno.env.set(k, x);
    }
  };
  apply(vars);
  try {
    await fn();
  } finally {
    apply(saved);
  }
}

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
