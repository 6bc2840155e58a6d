// The handshake filter and its fallback (a queue of one) on real loopback
// sockets: new SYNs go unanswered, the queue stays acceptable, and undoing
// it lets the retried SYN in.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseBind } from "../config/bind.ts";
import { openListener } from "../sockets/listeners.ts";
import { sampleQueues } from "../observe/queue.ts";
import { resumeHandshakes, shrinkQueue, stopHandshakes } from "./handshake_filter.ts";
import { waitFor } from "../../tests/_harness.ts";

/**
 * True once a connect to `port` from this machine has retransmitted its SYN:
 * its first one was dropped. /proc/net/tcp lists it in SYN_SENT (02) with
 * the retransmission count in the seventh column.
 */
function synRetried(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  return Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1).some((line) => {
    const f = line.trim().split(/\s+/);
    return f[2]?.endsWith(`:${hex}`) && f[3] === "02" && Number(f[6]) > 0;
  });
}

Deno.test("TCP: after stopHandshakes a new connect waits; the queued one is kept; resume lets it in", async () => {
  const listener = await openListener(parseBind("127.0.0.1:0", "/"), { backlog: 16 });
  const port = Number(listener.address.split(":").pop());
  const queued = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    assert(stopHandshakes(listener.fd));
    let connected = false;
    const late = Deno.connect({ hostname: "127.0.0.1", port }).then((c) => {
      connected = true;
      return c;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert(!connected, "its SYN was dropped, so it is still retrying");
    assertEquals(sampleQueues([listener])[0].length, 1, "the connection made before is queued");
    resumeHandshakes(listener.fd, 16);
    (await late).close(); // the retried SYN (about 1 s later) is answered
    assertEquals(sampleQueues([listener])[0].length, 2);
    resumeHandshakes(listener.fd, 16); // twice is harmless
  } finally {
    queued.close();
    listener.close();
  }
});

Deno.test("TCP: with the queue shrunk, one connection is queued, the next SYN is retried; resume lets it in", async () => {
  const listener = await openListener(parseBind("127.0.0.1:0", "/"), { backlog: 16 });
  const port = Number(listener.address.split(":").pop());
  shrinkQueue(listener.fd);
  const queued = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    assertEquals(sampleQueues([listener])[0].length, 1, "one place in the queue");
    const late = Deno.connect({ hostname: "127.0.0.1", port });
    await waitFor(() => synRetried(port) || undefined, {
      timeoutMs: 5_000,
      message: "the second connect to retransmit its dropped SYN",
    });
    assertEquals(sampleQueues([listener])[0].length, 1, "the second did not join the queue");
    resumeHandshakes(listener.fd, 16);
    (await late).close(); // the retried SYN is answered
    assertEquals(sampleQueues([listener])[0].length, 2);
  } finally {
    queued.close();
    listener.close();
  }
});

Deno.test("unix: stopHandshakes reports that it cannot cover a unix socket", async () => {
  const dir = await Deno.makeTempDir();
  const listener = await openListener(parseBind(`unix:${dir}/s.sock`, "/"), { backlog: 16 });
  try {
    assertEquals(stopHandshakes(listener.fd), false);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
