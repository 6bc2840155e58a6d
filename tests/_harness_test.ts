/**
 * Tests of the integration-test harness itself, against dummy programs (the
 * master is not needed), and of the test workers, started through
 * `tests/workers/launch.py`, a stand-in master that hands them sockets at
 * fds 3, 4, ...
 */

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import {
  type ArbiterProcess,
  cmdlineOf,
  freePort,
  httpGetJson,
  httpRequest,
  isAlive,
  isZombie,
  linesWithoutEvent,
  LoadGenerator,
  logEvent,
  parentOf,
  parseStat,
  pgidOf,
  processExists,
  REPO_ROOT,
  startArbiter,
  waitFor,
  waitForHttp,
  WORKERS_DIR,
} from "./_harness.ts";

function python(code: string): ArbiterProcess {
  return startArbiter([], { cmd: ["python3", "-u", "-c", code] });
}

Deno.test("paths: REPO_ROOT and WORKERS_DIR", () => {
  assert(REPO_ROOT.startsWith("/") && !REPO_ROOT.endsWith("/"));
  assert(Deno.statSync(`${REPO_ROOT}/deno.json`).isFile);
  assert(Deno.statSync(`${WORKERS_DIR}/py_worker.py`).isFile);
});

Deno.test("logEvent matches an event in either log format; linesWithoutEvent finds the unnamed", () => {
  const text =
    "2026-12-03T19:00:00.000Z arbiter[7] INFO [worker.spawned] worker 1 (pid 42) started";
  const json =
    '{"time":"t","level":"info","event":"worker.spawned","pid":7,"msg":"worker 1 (pid 42)"}';
  for (const line of [text, json]) {
    assertEquals(logEvent("worker.spawned", /worker (\d+) \(pid (\d+)\)/).exec(line)?.slice(1), [
      "1",
      "42",
    ]);
    assert(!logEvent("worker.ready").test(line), line);
  }
  assert(!logEvent("worker.spawned", "worker 2").test(text));
  const unnamed = "2026-12-03T19:00:00.000Z arbiter[7] INFO worker 1 started";
  const output = [text, json, unnamed, '{"level":"info","msg":"x"}', "[worker 0] app output"];
  assertEquals(linesWithoutEvent(output.join("\n")), [unnamed, '{"level":"info","msg":"x"}']);
});

Deno.test("parseStat: comm with spaces and parentheses", () => {
  const st = parseStat("42 (a) (b c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 2");
  assertEquals(st, {
    pid: 42,
    comm: "a) (b c)",
    state: "S",
    ppid: 7,
    pgid: 42,
    sid: 42,
    starttime: 12345,
  });
  assertEquals(parentOf(Deno.pid), Deno.ppid);
  assert(processExists(Deno.pid) && isAlive(Deno.pid) && !isZombie(Deno.pid));
  assertEquals(typeof pgidOf(Deno.pid), "number");
  assert(!processExists(2 ** 22 + 1));
  assert(cmdlineOf(Deno.pid).includes("test"), String(cmdlineOf(Deno.pid)));
});

Deno.test("ArbiterProcess: output captured, waitForLog with offsets, signal and exit", async () => {
  await using p = python(`
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("got term", file=sys.stderr), sys.exit(7)))
print("hello out")
print("ready 1", file=sys.stderr)
print("ready 2", file=sys.stderr)
while True: time.sleep(1)
`);
  const m1 = await p.waitForLog(/ready (\d)/);
  assertEquals(m1[1], "1");
  const m2 = await p.waitForLog(/ready (\d)/, { after: m1.index! + m1[0].length });
  assertEquals(m2[1], "2");
  await p.waitForLog("hello out", { stream: "stdout" });
  const off = p.logOffset();
  await rejects(p.waitForLog("ready 1", { after: off, timeoutMs: 100 }), /timed out.*ready 2/s);
  p.signal("SIGTERM");
  await p.waitForLog("got term", { after: off });
  const st = await p.waitExit(5000);
  assertEquals(st.code, 7);
  assertEquals(p.stdout(), "hello out\n");
  assert(p.exited);
});

Deno.test("ArbiterProcess: waitForLog rejects when the output ends without a match", async () => {
  await using p = python(`import sys; print("bye", file=sys.stderr); sys.exit(3)`);
  await rejects(p.waitForLog("never", { timeoutMs: 10_000 }), /output ended.*bye/s);
  assertEquals((await p.status).code, 3);
});

Deno.test("ArbiterProcess: large output does not block the child", async () => {
  await using p = python(`
import sys
sys.stdout.write("o" * 2_000_000); sys.stdout.flush()
sys.stderr.write("e" * 2_000_000); sys.stderr.flush()
`);
  const st = await p.waitExit(10_000);
  assertEquals(st.code, 0);
  assertEquals(p.stdout().length, 2_000_000);
  assertEquals(p.stderr().length, 2_000_000);
});

Deno.test("ArbiterProcess: children, waitForChildren, and cleanup of leftovers", async () => {
  let kids: number[] = [];
  {
    await using p = python(`
import subprocess, time
a = subprocess.Popen(["sleep", "300"])
b = subprocess.Popen(["sleep", "301"], start_new_session=True)
print("spawned", a.pid, b.pid, flush=True)
while True: time.sleep(1)
`);
    const m = await p.waitForLog(/spawned (\d+) (\d+)/, { stream: "stdout" });
    kids = await p.waitForChildren(2);
    assertEquals(kids, [Number(m[1]), Number(m[2])].sort((a, b) => a - b));
    for (const k of kids) assertEquals(parentOf(k), p.pid);
    assertEquals(cmdlineOf(kids[0]).slice(0, 1), ["sleep"]);
    assertEquals(p.children(), kids);
    await rejects(p.waitForChildren(3, { timeoutMs: 100 }), /3 children.*last seen/s);
    assertEquals(
      await p.waitForChildren(1, { predicate: (pid) => cmdlineOf(pid).includes("301") }),
      [Number(m[2])],
    );
    // Leaving the block SIGKILLs python; its orphaned children must go too.
  }
  await waitFor(() => kids.every((k) => !isAlive(k)), {
    timeoutMs: 5000,
    message: `leftover children ${kids} killed`,
  });
});

Deno.test("waitFor: returns the probe's value, times out with the message", async () => {
  let n = 0;
  assertEquals(await waitFor(() => ++n >= 3 && n), 3);
  await rejects(
    waitFor(() => {
      throw new Error("nope");
    }, { timeoutMs: 60, message: "the thing" }),
    /timed out after 60 ms: the thing \(last error: Error: nope\)/,
  );
});

Deno.test("HTTP helpers and LoadGenerator against an in-process server", async () => {
  const port = freePort();
  assert(port > 0);
  // Nothing listens yet: the load generator counts failures.
  const down = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { concurrency: 2 });
  await waitFor(() => down.snapshot().failed >= 4);
  const downResult = await down.stop();
  assertEquals(downResult.ok, 0);
  assert(downResult.errors.length > 0 && downResult.errors.length <= 10);

  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, signal: ac.signal, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/fail") return new Response("no", { status: 503 });
      return Response.json({ path });
    },
  );
  try {
    const r = await waitForHttp(`http://127.0.0.1:${port}/x`);
    assertEquals(r.json(), { path: "/x" });
    assertEquals(await httpGetJson(`http://127.0.0.1:${port}/y`), { path: "/y" });
    await rejects(httpGetJson(`http://127.0.0.1:${port}/fail`), /HTTP 503/);
    assertEquals((await httpRequest(`http://127.0.0.1:${port}/fail`)).status, 503);

    for (const keepAlive of [true, false]) {
      const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { keepAlive });
      await waitFor(() => load.snapshot().ok >= 50);
      const res = await load.stop();
      assertEquals(res.failed, 0, res.errors.join("\n"));
    }
    const bad = new LoadGenerator().start(`http://127.0.0.1:${port}/fail`, { concurrency: 1 });
    await waitFor(() => bad.snapshot().failed >= 3);
    const badResult = await bad.stop();
    assertEquals(badResult.ok, 0);
    assert(badResult.errors[0].startsWith("HTTP 503"), badResult.errors[0]);
  } finally {
    ac.abort();
    await server.finished;
  }
});

// ---------------------------------------------------------------------------
// The test workers, started through launch.py with inherited sockets.

const LAUNCH = `${WORKERS_DIR}/launch.py`;

const WORKERS: Record<string, string[]> = {
  python: ["python3", `${WORKERS_DIR}/py_worker.py`],
  deno: [Deno.execPath(), "run", "-A", "--quiet", `${WORKERS_DIR}/deno_http.ts`],
};

interface Launched {
  proc: ArbiterProcess;
  url: string;
  sock: string;
  dir: string;
}

/** Start `worker` via launch.py on 127.0.0.1:0 (fd 3) and a unix socket (fd 4). */
async function launch(
  worker: string[],
  opts: { env?: Record<string, string>; workers?: number; flags?: string[] } = {},
): Promise<Launched> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-harness-" });
  const sock = `${dir}/w.sock`;
  const proc = startArbiter([], {
    cmd: [
      "python3",
      LAUNCH,
      "--bind",
      "127.0.0.1:0",
      "--bind",
      `unix:${sock}`,
      "--workers",
      String(opts.workers ?? 1),
      ...(opts.flags ?? []),
      "--",
      ...worker,
    ],
    env: opts.env,
    cwd: REPO_ROOT,
  });
  const m = await proc.waitForLog(/launch: fd 3 = (127\.0\.0\.1:\d+)/);
  return { proc, url: `http://${m[1]}`, sock, dir };
}

async function cleanup(l: Launched): Promise<void> {
  await l.proc[Symbol.asyncDispose]();
  await Deno.remove(l.dir, { recursive: true });
}

interface RootInfo {
  pid: number;
  ppid: number;
  pgid: number;
  worker_id: number;
  listen_fds: number;
  listen_pid: number;
  listen_fdnames: string;
  fd: number;
  lang: string;
  env: Record<string, string>;
}

for (const [lang, worker] of Object.entries(WORKERS)) {
  Deno.test(`${lang} worker: serves / on fd 3 and fd 4, /fds, graceful TERM`, async () => {
    const l = await launch(worker);
    try {
      const p = l.proc;
      await p.waitForLog(`worker 0 pid ${p.pid} listening`, { stream: "stdout" });
      const info = (await waitForHttp(`${l.url}/`)).json<RootInfo>();
      assertEquals(info.lang, lang);
      assertEquals(info.pid, p.pid); // launch.py exec'ed the worker in place
      assertEquals(info.listen_pid, p.pid);
      assertEquals(info.listen_fds, 2);
      assertEquals(info.worker_id, 0);
      assertEquals(info.fd, 3);
      assertEquals(info.ppid, Deno.pid);
      assertEquals(info.pgid, pgidOf(p.pid));
      const viaUnix = await httpGetJson<RootInfo>("http://worker/", { unixSocket: l.sock });
      assertEquals(viaUnix.fd, 4);

      const fds = await httpGetJson<{ fd: number; target: string }[]>(`${l.url}/fds`);
      const sockets = fds.filter((f) => f.fd === 3 || f.fd === 4);
      assertEquals(sockets.length, 2);
      assert(sockets.every((f) => f.target.startsWith("socket:")), JSON.stringify(sockets));

      // A request in flight when TERM arrives still completes; then exit 0.
      const slow = httpRequest(`${l.url}/slow?ms=800`);
      // The worker says when the request has arrived.
      await p.waitForLog(`worker 0 pid ${p.pid} slow start`, { stream: "stdout" });
      const off = p.logOffset("stdout");
      p.signal("SIGUSR1");
      await p.waitForLog(`worker 0 pid ${p.pid} got USR1`, { stream: "stdout", after: off });
      p.signal("SIGTERM");
      const r = await slow;
      assertEquals(r.text, "slow done");
      const st = await p.waitExit(5000);
      assertEquals(st.code, 0, p.stderr());
    } finally {
      await cleanup(l);
    }
  });

  Deno.test(`${lang} worker: EXIT_AT_BOOT, IGNORE_TERM, BOOT_DELAY_MS`, async () => {
    const dead = await launch(worker, { env: { EXIT_AT_BOOT: "4" } });
    try {
      assertEquals((await dead.proc.waitExit()).code, 4);
    } finally {
      await cleanup(dead);
    }
    const l = await launch(worker, { env: { IGNORE_TERM: "1", BOOT_DELAY_MS: "300" } });
    try {
      const t0 = performance.now();
      await l.proc.waitForLog("listening", { stream: "stdout" });
      assert(performance.now() - t0 >= 250, "BOOT_DELAY_MS respected");
      await waitForHttp(`${l.url}/`);
      l.proc.signal("SIGTERM");
      // Still serving after TERM (a signal is handled before the next request).
      for (let i = 0; i < 5; i++) await httpGetJson(`${l.url}/`);
      assert(!l.proc.exited);
      l.proc.signal("SIGQUIT");
      assertEquals((await l.proc.waitExit(5000)).code, 0);
    } finally {
      await cleanup(l);
    }
  });

  Deno.test(`${lang} worker: two workers share the sockets, no failure under load, TERM`, async () => {
    const l = await launch(worker, { workers: 2 });
    try {
      const pids = await l.proc.waitForChildren(2);
      await l.proc.waitForLog(/worker 1 pid \d+ listening/, { stream: "stdout" });
      await l.proc.waitForLog(/worker 0 pid \d+ listening/, { stream: "stdout" });
      for (const keepAlive of [true, false]) {
        const load = new LoadGenerator().start(`${l.url}/`, { keepAlive, concurrency: 4 });
        await waitFor(() => load.snapshot().ok >= 100);
        const res = await load.stop();
        assertEquals(res.failed, 0, res.errors.join("\n"));
      }
      const seen = new Set<number>();
      await waitFor(async () => {
        seen.add((await httpGetJson<RootInfo>(`${l.url}/`)).pid);
        return seen.size === 2;
      }, { message: "both workers answer" });
      assertEquals([...seen].sort((a, b) => a - b), pids);
      // Both block in accept() on the same socket; TERM must still end them promptly.
      const t0 = performance.now();
      l.proc.signal("SIGTERM");
      assertEquals((await l.proc.waitExit(5000)).code, 0, l.proc.stderr());
      assert(performance.now() - t0 < 3000, `stopped in ${performance.now() - t0} ms`);
      for (const pid of pids) assert(!isAlive(pid));
    } finally {
      await cleanup(l);
    }
  });
}

Deno.test("python worker: warns about a non-blocking inherited socket", async () => {
  const l = await launch(WORKERS.python, { flags: ["--nonblocking"] });
  try {
    await l.proc.waitForLog("inherited fd 3 is non-blocking");
    await waitForHttp(`${l.url}/`);
  } finally {
    await cleanup(l);
  }
});

Deno.test("python worker: NOTIFY_READY and WATCHDOG_PING speak sd_notify", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-notify-" });
  const path = `${dir}/notify.sock`;
  const conn = Deno.listenDatagram({ transport: "unixpacket", path });
  try {
    const l = await launch(WORKERS.python, {
      env: {
        NOTIFY_SOCKET: path,
        NOTIFY_READY: "1",
        WATCHDOG_PING: "1",
        WATCHDOG_USEC: "150000",
      },
    });
    try {
      const got: string[] = [];
      while (got.length < 3) {
        const [data] = await conn.receive();
        got.push(new TextDecoder().decode(data));
      }
      assertEquals(got[0], "READY=1");
      assertEquals(got.slice(1), ["WATCHDOG=1", "WATCHDOG=1"]);
    } finally {
      await cleanup(l);
    }
  } finally {
    conn.close();
    await Deno.remove(dir, { recursive: true });
  }
});
