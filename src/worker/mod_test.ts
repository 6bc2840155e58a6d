/**
 * Tests of the Deno worker helper: a real app (`testdata/app.ts`) is started
 * by `tests/workers/launch.py`, a stand-in master that binds a socket and
 * execs the app with it at fd 3, and is driven over HTTP, raw TCP, notify
 * sockets and signals.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  type ArbiterProcess,
  httpRequest,
  startArbiter,
  WORKERS_DIR,
} from "../../tests/_harness.ts";

const APP = new URL("./testdata/app.ts", import.meta.url).pathname;

/** Start the test app under launch.py; resolves with the process and its base URL. */
async function startApp(
  env: Record<string, string> = {},
  denoFlags: string[] = ["-A"],
  binds: string[] = ["127.0.0.1:0"],
): Promise<{ app: ArbiterProcess; url: string; port: number }> {
  const app = startArbiter([], {
    cmd: [
      "python3",
      `${WORKERS_DIR}/launch.py`,
      ...binds.flatMap((b) => ["--bind", b]),
      "--",
      Deno.execPath(),
      "run",
      "--quiet",
      ...denoFlags,
      APP,
    ],
    env: { ARBITER_WORKER_ID: "0", ...env },
  });
  try {
    const m = await app.waitForLog(/launch: fd 3 = 127\.0\.0\.1:(\d+)/);
    await app.waitForLog("listening", { stream: "stdout" });
    const port = Number(m[1]);
    return { app, url: `http://127.0.0.1:${port}`, port };
  } catch (error) {
    await app[Symbol.asyncDispose]();
    throw error;
  }
}

/** Read from `conn` until `done(text)` or EOF; returns the text and whether EOF came. */
async function readUntil(
  conn: Deno.Conn,
  done: (text: string) => boolean,
  timeoutMs = 5000,
): Promise<{ text: string; eof: boolean }> {
  const buf = new Uint8Array(65536);
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (!done(text)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no data within ${timeoutMs} ms; got ${JSON.stringify(text)}`)),
          Math.max(1, deadline - Date.now()),
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (n === null) return { text, eof: true };
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
  return { text, eof: false };
}

/** A complete HTTP/1.1 response with a chunked or sized body has arrived. */
function responseComplete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const head = text.slice(0, end).toLowerCase();
  const length = head.match(/content-length: (\d+)/);
  if (length) return text.length - end - 4 >= Number(length[1]);
  return /transfer-encoding: chunked/.test(head) ? text.endsWith("0\r\n\r\n") : true;
}

for (const transport of ["native", "node"] as const) {
  const forced = { ARBITER_WORKER_TRANSPORT: transport };

  Deno.test(`serve (${transport}): answers on fd 3, converts headers, status, cookies and bodies`, async () => {
    const { app, url, port } = await startApp(forced);
    assert(app.stdout().includes(`listening (${transport})`), app.stdout());
    await using _ = app;

    const hello = await httpRequest(`${url}/`);
    assertEquals([hello.status, hello.text], [200, "hello from worker 0\n"]);

    const echo = await fetch(`${url}/echo?x=1`, {
      method: "POST",
      headers: { "content-type": "application/x-test" },
      body: "x".repeat(100_000),
    });
    assertEquals(echo.headers.get("x-method"), "POST");
    assertEquals(echo.headers.get("x-got-type"), "application/x-test");
    assertEquals(echo.headers.get("x-got-path"), "/echo?x=1");
    assertEquals((await echo.text()).length, 100_000);

    // Streamed response: the first chunk arrives before the others are made.
    const stream = await fetch(`${url}/stream`);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    assertEquals((await reader.read()).value, "chunk 0\n");
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
    assertEquals(rest, "chunk 1\nchunk 2\n");

    const cookies = await fetch(`${url}/cookies`);
    await cookies.body?.cancel();
    assertEquals(cookies.status, 201);
    assertEquals(cookies.headers.getSetCookie(), ["a=1", "b=2"]);
    // fetch() replaces the reason phrase with the standard one: look at the wire.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET /cookies HTTP/1.1\r\nHost: t\r\n\r\n"));
    const raw = await readUntil(conn, responseComplete);
    conn.close();
    // Deno.serve (hyper) sends the standard reason phrase; node:http sends the handler's.
    const reason = transport === "node" ? "Made" : "Created";
    assert(raw.text.startsWith(`HTTP/1.1 201 ${reason}\r\n`), raw.text);

    const thrown = await httpRequest(`${url}/throw`);
    assertEquals(thrown.status, 500);
    await app.waitForLog("boom (expected in a test)");

    assertEquals((await httpRequest(`${url}/nope`)).status, 404);

    app.signal("SIGTERM");
    assertEquals((await app.waitExit()).code, 0);
    assert(app.stdout().includes("finished"));
  });

  Deno.test(`serve (${transport}): a request in flight at TERM finishes, with Connection: close`, async () => {
    const { app, url } = await startApp(forced);
    await using _ = app;
    const slow = httpRequest(`${url}/slow?ms=800`);
    await app.waitForLog("slow start", { stream: "stdout" });
    app.signal("SIGTERM");
    const res = await slow;
    assertEquals([res.status, res.text], [200, "slow done\n"]);
    assertEquals(res.headers.get("connection"), "close");
    assertEquals((await app.waitExit()).code, 0);
    // New connections are refused once draining has finished.
    const late = await httpRequest(`${url}/`).then(() => "answered", () => "refused");
    assertEquals(late, "refused");
  });

  Deno.test(`serve (${transport}): idle and busy keep-alive connections are closed cleanly on TERM`, async () => {
    const { app, port } = await startApp(forced);
    await using _ = app;
    const request = (path: string) =>
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n`,
      );

    // An idle keep-alive connection: answered, then left open.
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    await idle.write(request("/"));
    const first = await readUntil(idle, responseComplete);
    assert(/^HTTP\/1\.1 200/.test(first.text), first.text);
    assert(!first.eof);

    // A busy keep-alive connection: a slow request in flight at TERM.
    const busy = await Deno.connect({ hostname: "127.0.0.1", port });
    // Long enough that TERM surely lands while it runs, even on a loaded machine.
    await busy.write(request("/slow?ms=2500"));
    await app.waitForLog("slow start", { stream: "stdout" });

    // A connection that never sent a request (clients keep spare ones).
    const spare = await Deno.connect({ hostname: "127.0.0.1", port });
    await new Promise((r) => setTimeout(r, 100)); // accepted by the server

    app.signal("SIGTERM");
    assertEquals(await readUntil(spare, () => false), { text: "", eof: true });
    spare.close();
    // The idle one is closed with a FIN once idle for the grace period (EOF here, no reset).
    const idleEnd = await readUntil(idle, () => false);
    assertEquals(idleEnd, { text: "", eof: true });
    idle.close();
    // The busy one gets its whole answer, marked `Connection: close`, then EOF.
    const busyEnd = await readUntil(busy, () => false);
    assert(busyEnd.eof);
    assert(/^HTTP\/1\.1 200/.test(busyEnd.text), busyEnd.text);
    assert(/\r\nconnection: close\r\n/i.test(busyEnd.text), busyEnd.text);
    assert(busyEnd.text.includes("slow done"), busyEnd.text);
    busy.close();
    assertEquals((await app.waitExit()).code, 0);
  });

  Deno.test(`serve (${transport}): within the grace after TERM, fresh and idle connections are answered`, async () => {
    const { app, port } = await startApp(forced);
    await using _ = app;
    const request = (path: string) =>
      new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: test\r\n\r\n`);
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    await idle.write(request("/"));
    assert(/^HTTP\/1\.1 200/.test((await readUntil(idle, responseComplete)).text));
    // A client that has connected but not sent its request yet. The server
    // accepts in order, so once a later connection is answered, it holds this one.
    const fresh = await Deno.connect({ hostname: "127.0.0.1", port });
    const later = await Deno.connect({ hostname: "127.0.0.1", port });
    await later.write(request("/"));
    assert(/^HTTP\/1\.1 200/.test((await readUntil(later, responseComplete)).text));
    later.close();

    app.signal("SIGTERM");
    await new Promise((r) => setTimeout(r, 200)); // well within the 1 s grace
    for (const conn of [fresh, idle]) await conn.write(request("/"));
    for (const conn of [fresh, idle]) {
      // Answered, and told to go (Deno.serve leaves closing to the client).
      const answer = await readUntil(conn, responseComplete);
      const name = conn === fresh ? "fresh" : "idle";
      assert(/^HTTP\/1\.1 200/.test(answer.text), `${name}: ${JSON.stringify(answer)}`);
      assert(/\r\nconnection: close\r\n/i.test(answer.text), `${name}: ${answer.text}`);
      conn.close();
    }
    assertEquals((await app.waitExit()).code, 0);
  });

  Deno.test(`serve (${transport}): READY=1, WATCHDOG=1 and STOPPING=1 over NOTIFY_SOCKET datagrams`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "arbiter-worker-test-" });
    const path = `${dir}/notify`;
    const sock = Deno.listenDatagram({ transport: "unixpacket", path });
    try {
      const { app } = await startApp({ ...forced, NOTIFY_SOCKET: path, WATCHDOG_USEC: "100000" });
      await using _ = app;
      const received: string[] = [];
      const next = async () => {
        const [data] = await sock.receive();
        const msg = new TextDecoder().decode(data);
        received.push(msg);
        return msg;
      };
      assertEquals(await next(), "READY=1");
      assertEquals(await next(), "WATCHDOG=1");
      const t0 = performance.now();
      assertEquals(await next(), "WATCHDOG=1");
      const gap = performance.now() - t0;
      assert(gap > 20 && gap < 1000, `watchdog every ${gap} ms, expected about 50`);
      app.signal("SIGTERM");
      while ((await next()) !== "STOPPING=1") { /* more WATCHDOG=1 */ }
      assertEquals((await app.waitExit()).code, 0);
      assert(
        received.every((m) => ["READY=1", "WATCHDOG=1", "STOPPING=1"].includes(m)),
        String(received),
      );
    } finally {
      sock.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("serve: READY=1 and STOPPING=1 over ARBITER_NOTIFY_STREAM lines", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-worker-test-" });
  const path = `${dir}/notify.stream`;
  const listener = Deno.listen({ transport: "unix", path });
  try {
    // Without --unstable-net there are no datagrams: the stream is the way.
    const { app } = await startApp({ ARBITER_NOTIFY_STREAM: path, NOTIFY_SOCKET: `${dir}/none` }, [
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-net",
      "--no-config",
    ]);
    await using _ = app;
    const conn = await Promise.race([
      listener.accept(),
      app.waitExit(5000).then(() => Promise.reject(new Error(`app exited:\n${app.stderr()}`))),
    ]);
    const ready = await readUntil(conn, (t) => t.includes("\n"));
    assertEquals(ready.text, "READY=1\n");
    app.signal("SIGTERM");
    const rest = await readUntil(conn, () => false);
    assertEquals(rest, { text: "STOPPING=1\n", eof: true });
    conn.close();
    assertEquals((await app.waitExit()).code, 0);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Whether this machine has IPv6 loopback. */
function hasIpv6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("serve: REGRESSION GUARD: the native path is taken on this Deno, on TCP v4, v6 and unix sockets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-worker-test-" });
  try {
    const v6 = hasIpv6();
    const binds = ["127.0.0.1:0", `unix:${dir}/http.sock`, ...(v6 ? ["[::1]:0"] : [])];
    const { app, url } = await startApp({}, ["-A"], binds);
    await using _ = app;
    assert(
      app.stdout().includes("listening (native)") && !app.stderr().includes("arbiter worker:"),
      `serve() did NOT take the native Deno.serve path on Deno ${Deno.version.deno}: the swap ` +
        `under Deno.serve's listener (src/worker/_swap.ts) no longer works on this version, so ` +
        `every Deno worker silently runs at about a third of the speed. Worker output:\n` +
        app.stderr(),
    );
    assertEquals((await httpRequest(`${url}/`)).text, "hello from worker 0\n");
    const unix = await httpRequest("http://localhost/", { unixSocket: `${dir}/http.sock` });
    assertEquals(unix.text, "hello from worker 0\n");
    if (v6) {
      const port = (await app.waitForLog(/launch: fd 5 = \[::1\]:(\d+)/))[1];
      assertEquals((await httpRequest(`http://[::1]:${port}/`)).text, "hello from worker 0\n");
    }
    app.signal("SIGTERM");
    assertEquals((await app.waitExit()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: without -A, auto falls back to node:http with one warning line saying why", async () => {
  const { app, url } = await startApp({}, [
    "--allow-env",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--allow-ffi",
  ]);
  await using _ = app;
  assert(app.stdout().includes("listening (node)"), app.stdout());
  const warnings = app.stderr().split("\n").filter((l) => l.startsWith("arbiter worker:"));
  assertEquals(warnings.length, 1, app.stderr());
  assert(/node:http.*needs -A/.test(warnings[0]), warnings[0]);
  assertEquals((await httpRequest(`${url}/`)).text, "hello from worker 0\n");
  app.signal("SIGTERM");
  assertEquals((await app.waitExit()).code, 0);
});

Deno.test("serve: a forced native path that cannot work is an error, not a fallback", async () => {
  const app = startArbiter([], {
    cmd: [
      "python3",
      `${WORKERS_DIR}/launch.py`,
      "--bind",
      "127.0.0.1:0",
      "--",
      Deno.execPath(),
      "run",
      "--quiet",
      "--allow-env",
      "--allow-read",
      "--allow-net",
      APP,
    ],
    env: { ARBITER_WORKER_TRANSPORT: "native" },
  });
  await using _ = app;
  const status = await app.waitExit();
  assert(status.code !== 0);
  assert(
    /arbiter worker: cannot serve on fd 3: transport "native": needs -A/.test(app.stderr()),
    app.stderr(),
  );
  assert(!app.stdout().includes("listening"), app.stdout());
});
