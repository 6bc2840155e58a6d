// The raw HTTP/1.1 client of the load generator, against a scripted server on
// loopback: every body framing is read whole, and every way a server can fail
// a request is reported, not hidden.
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { Http1Connection } from "./_http1.ts";
import { LoadGenerator } from "./_harness.ts";

/** A server that answers each connection's first request with `reply` (bytes as text), then closes. */
async function withServer(
  reply: string,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(4096));
      if (reply) await conn.write(new TextEncoder().encode(reply));
      conn.close();
    }
  })();
  try {
    await fn((listener.addr as Deno.NetAddr).port);
  } finally {
    listener.close();
    await served.catch(() => {});
  }
}

async function oneRequest(port: number) {
  const conn = await Http1Connection.open("127.0.0.1", port);
  try {
    return await conn.request("/", `127.0.0.1:${port}`, false);
  } finally {
    conn.close();
  }
}

Deno.test("http1: Content-Length body, keep-alive by default in HTTP/1.1", async () => {
  await withServer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", async (port) => {
    const res = await oneRequest(port);
    assertEquals([res.status, res.body, res.closes], [200, "hello", false]);
  });
});

Deno.test("http1: chunked body with a trailer; Connection: close is seen", async () => {
  const reply = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
    "3\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n";
  await withServer(reply, async (port) => {
    const res = await oneRequest(port);
    assertEquals([res.body, res.closes], ["hello", true]);
  });
});

Deno.test("http1: HTTP/1.0 without keep-alive closes; no length reads to EOF", async () => {
  await withServer("HTTP/1.0 200 OK\r\n\r\nuntil eof", async (port) => {
    const res = await oneRequest(port);
    assertEquals([res.body, res.closes], ["until eof", true]);
  });
});

Deno.test("http1: a connection closed before or during the response is a short read", async () => {
  await withServer("", async (port) => {
    await rejects(oneRequest(port), /short read: connection closed before the response headers/);
  });
  await withServer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal", async (port) => {
    await rejects(oneRequest(port), /short read: connection closed before the body was complete/);
  });
});

Deno.test("LoadGenerator raw mode counts refused connections and non-2xx answers", async () => {
  await withServer("HTTP/1.1 503 No\r\nContent-Length: 2\r\n\r\nno", async (port) => {
    const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, {
      connection: "close",
      concurrency: 1,
    });
    // Wait for a few answers, never a fixed sleep.
    while (load.snapshot().failed < 3) await new Promise((r) => setTimeout(r, 5));
    const result = await load.stop();
    assertEquals(result.ok, 0);
    assert(result.errors[0].startsWith("HTTP 503"), result.errors[0]);
  });
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close(); // nothing listens there now
  const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { connection: "keep-alive" });
  while (load.snapshot().failed < 3) await new Promise((r) => setTimeout(r, 5));
  const result = await load.stop();
  assert(/refused/i.test(result.errors[0]), result.errors[0]);
});
