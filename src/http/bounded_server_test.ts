import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import {
  type BoundedServer,
  connectionCap,
  serveBounded,
  type ServerLimits,
  softFileLimit,
} from "./bounded_server.ts";

const encoder = new TextEncoder();

/** A server on a loopback port with `limits`; closed after `fn`. */
async function withServer(
  limits: Partial<ServerLimits>,
  handler: (req: Request) => Response | Promise<Response>,
  fn: (port: number, server: BoundedServer) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = serveBounded({ name: "test", listener, handler, limits });
  try {
    await fn(listener.addr.port, server);
  } finally {
    await server.close();
  }
}

/**
 * Everything the server sends on one connection until it closes it, and how
 * long that took; the test fails if the server keeps it open past `withinMs`.
 */
async function exchange(
  port: number,
  send: string | Uint8Array = "",
  withinMs = 3000,
): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), withinMs);
  let text = "";
  let closedByUs = false;
  try {
    if (send.length > 0) await conn.write(typeof send === "string" ? encoder.encode(send) : send);
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch (error) {
    closedByUs = error instanceof Deno.errors.BadResource ||
      error instanceof Deno.errors.Interrupted;
    if (!closedByUs && !(error instanceof Deno.errors.ConnectionReset)) throw error;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
  assert(!closedByUs, `the server kept the connection open for ${withinMs} ms`);
  return { text, ms: performance.now() - started };
}

/** Polls `check` until it holds (or fails the test after `ms`). */
async function eventually(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ok = () => new Response("hello\n", { headers: { "x-test": "1" } });

Deno.test("bounded server: one request, one answer with Content-Length and Connection: close", async () => {
  await withServer({}, ok, async (port) => {
    const { text } = await exchange(port, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assertMatch(text, /^HTTP\/1\.1 200 OK\r\n/);
    assertMatch(text, /\r\nx-test: 1\r\n/);
    assertMatch(text, /\r\ncontent-length: 6\r\nconnection: close\r\n\r\nhello\n$/);
    const head = await exchange(port, "HEAD /x HTTP/1.1\r\n\r\n");
    assertMatch(head.text, /content-length: 6\r\nconnection: close\r\n\r\n$/);
    // fetch, the way the tests and probes talk to it.
    const res = await fetch(`http://127.0.0.1:${port}/x`);
    assertEquals([res.status, await res.text()], [200, "hello\n"]);
  });
});

Deno.test("bounded server: the handler sees method, path, headers and body", async () => {
  const seen: string[] = [];
  const handler = async (req: Request) => {
    seen.push(`${req.method} ${new URL(req.url).pathname} ${req.headers.get("x-a")}`);
    seen.push(await req.text());
    return new Response(null, { status: 200 });
  };
  await withServer({ maxBodyBytes: 100 }, handler, async (port) => {
    const body = "0123456789";
    // The body arrives in two pieces.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(`POST /p HTTP/1.1\r\nX-A: b\r\nContent-Length: 10\r\n\r\n012`));
    await conn.write(encoder.encode(body.slice(3)));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    conn.close();
    assertMatch(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200 /);
    assertEquals(seen, ["POST /p b", body]);
  });
});

Deno.test("bounded server: oversized heads and bodies, bad requests, throwing handlers", async () => {
  let throwing = false;
  const handler = () => {
    if (throwing) throw new Error("boom");
    return ok();
  };
  await withServer({ maxHeadBytes: 256, maxBodyBytes: 10 }, handler, async (port) => {
    const big = `GET / HTTP/1.1\r\nX: ${"a".repeat(300)}\r\n\r\n`;
    assertMatch((await exchange(port, big)).text, /^HTTP\/1\.1 431 .*larger than 256 bytes/s);
    const body = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    assertMatch((await exchange(port, body)).text, /^HTTP\/1\.1 413 .*larger than 10 bytes/s);
    assertMatch((await exchange(port, "NOPE\r\n\r\n")).text, /^HTTP\/1\.1 400 /);
    const chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assertMatch((await exchange(port, chunked)).text, /^HTTP\/1\.1 501 /);
    throwing = true;
    assertMatch((await exchange(port, "GET / HTTP/1.1\r\n\r\n")).text, /^HTTP\/1\.1 500 .*boom/s);
    throwing = false;
    assertMatch((await exchange(port, "GET / HTTP/1.1\r\n\r\n")).text, /^HTTP\/1\.1 200 /);
  });
});

Deno.test("bounded server: an idle connection is closed after the idle timeout", async () => {
  await withServer({ idleTimeoutMs: 150 }, ok, async (port, server) => {
    const { text, ms } = await exchange(port, "", 3000);
    assertEquals(text, "");
    assert(ms >= 100, `closed after ${ms} ms`);
    await eventually(() => server.connections === 0, "no open connection");
  });
});

Deno.test("bounded server: a slowloris client is closed at the header timeout", async () => {
  await withServer({ idleTimeoutMs: 1000, headerTimeoutMs: 300 }, ok, async (port) => {
    const started = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    // One header byte every 50 ms: never idle, never complete.
    let closed = false;
    await conn.write(encoder.encode("GET / HTTP/1.1\r\n"));
    while (!closed && performance.now() - started < 3000) {
      await new Promise((r) => setTimeout(r, 50));
      try {
        await conn.write(encoder.encode("X"));
      } catch {
        closed = true;
      }
    }
    conn.close();
    const ms = performance.now() - started;
    assert(closed && ms < 2000, `still open after ${ms} ms`);
  });
});

Deno.test("bounded server: a body that stops coming is closed at the request timeout", async () => {
  const limits = { idleTimeoutMs: 5000, requestTimeoutMs: 300, maxBodyBytes: 100 };
  await withServer(limits, ok, async (port) => {
    const { text, ms } = await exchange(port, "POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\nab");
    assertEquals(text, "");
    assert(ms < 2000, `closed after ${ms} ms`);
  });
});

Deno.test("bounded server: a handler that never answers gets a 503; its late rejection is contained", async () => {
  let rejectLate!: (error: Error) => void;
  const handler = () => new Promise<Response>((_, reject) => rejectLate = reject);
  await withServer({ handlerTimeoutMs: 200 }, handler, async (port) => {
    assertMatch((await exchange(port, "GET / HTTP/1.1\r\n\r\n")).text, /^HTTP\/1\.1 503 /);
  });
  // An unhandled rejection here would fail this test.
  rejectLate(new Error("too late"));
  await new Promise((r) => setTimeout(r, 10));
});

Deno.test("bounded server: a client that does not read the answer is closed at the write timeout", async () => {
  const huge = new Uint8Array(64 * 1024 * 1024);
  await withServer({ writeTimeoutMs: 300 }, () => new Response(huge), async (port, server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode("GET / HTTP/1.1\r\n\r\n"));
    await eventually(() => server.connections === 1, "the connection");
    await eventually(() => server.connections === 0, "the connection closed", 3000);
    conn.close();
  });
});

Deno.test("bounded server: past the cap new connections are closed at once; freed slots serve again", async () => {
  await withServer({ maxConnections: 3 }, ok, async (port, server) => {
    const idle: Deno.Conn[] = [];
    for (let i = 0; i < 3; i++) idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await eventually(() => server.connections === 3, "3 open connections");
    const refused = await exchange(port, "GET / HTTP/1.1\r\n\r\n", 1000);
    assertEquals(refused.text, "");
    assertEquals(server.connections, 3);
    for (const conn of idle) conn.close();
    await eventually(() => server.connections === 0, "the idle connections gone");
    assertMatch((await exchange(port, "GET / HTTP/1.1\r\n\r\n")).text, /^HTTP\/1\.1 200 /);
  });
});

Deno.test("bounded server: close ends idle connections at once and lets a request in progress finish", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = serveBounded({
    name: "test",
    listener,
    handler: async () => (await gate, ok()),
  });
  const port = listener.addr.port;
  const idle = await Deno.connect({ hostname: "127.0.0.1", port });
  const busy = exchange(port, "GET / HTTP/1.1\r\n\r\n");
  await eventually(() => server.connections === 2, "2 connections");
  const closing = server.close();
  assertEquals(await idle.read(new Uint8Array(10)), null);
  idle.close();
  release();
  assertMatch((await busy).text, /^HTTP\/1\.1 200 /);
  await closing;
  await server.close();
});

Deno.test("bounded server: limits must be positive integers", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    serveBounded({ name: "t", listener, handler: ok, limits: { idleTimeoutMs: 0 } });
    throw new Error("accepted");
  } catch (error) {
    assert(error instanceof RangeError);
    assertMatch(error.message, /idleTimeoutMs: expected an integer of at least 1, got 0/);
  } finally {
    listener.close();
  }
});

Deno.test("bounded server: EMFILE on accept is logged and backed off; the server recovers", async () => {
  const fixture = new URL("./_emfile_fixture.ts", import.meta.url).pathname;
  const child = new Deno.Command("bash", {
    args: ["-c", `ulimit -n 64 && exec "$0" run -A "$1"`, Deno.execPath(), fixture],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const errDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (stderr += chunk) }),
  );
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const flood: Deno.Conn[] = [];
  try {
    const { value } = await lines.read();
    const port = Number(value?.trim());
    assert(port > 0, `no port from the fixture: ${value} ${stderr}`);
    // Far more connections than the fixture has descriptors.
    for (let i = 0; i < 120; i++) flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await eventually(() => stderr.includes("accept failed"), "the accept warning", 5000);
    assertMatch(stderr, /fixture: accept failed \(Too many open files.*\); retrying in \d+ ms/);
    for (const conn of flood.splice(0)) conn.close();
    // Served again once descriptors are free (after at most one back-off).
    const deadline = performance.now() + 5000;
    let status = 0;
    while (status !== 200 && performance.now() < deadline) {
      status = await fetch(`http://127.0.0.1:${port}/`)
        .then(async (res) => (await res.body?.cancel(), res.status))
        .catch(() => 0);
    }
    assertEquals(status, 200);
  } finally {
    for (const conn of flood) conn.close();
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await lines.cancel();
    await errDone;
  }
  const { code } = await child.status;
  assertEquals(code, 0, `the fixture died: ${stderr}`);
  assert(!stderr.includes("Uncaught"), stderr);
});

Deno.test("connectionCap: 64, an eighth of a low open-file limit, never below 4", () => {
  assertEquals(connectionCap(undefined), 64);
  assertEquals(connectionCap(1_048_576), 64);
  assertEquals(connectionCap(1024), 64);
  assertEquals(connectionCap(256), 32);
  assertEquals(connectionCap(96), 12);
  assertEquals(connectionCap(16), 4);
  const soft = softFileLimit();
  assert(soft === undefined || soft > 0, `read ${soft}`);
});
