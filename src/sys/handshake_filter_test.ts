// The handshake filter on real loopback sockets: new SYNs go unanswered, the
// queue stays acceptable, and detaching lets the retried SYN in.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseBind } from "../config/bind.ts";
import { openListener } from "../sockets/listeners.ts";
import { sampleQueues } from "../observe/queue.ts";
import { resumeHandshakes, stopHandshakes } from "./handshake_filter.ts";

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
    resumeHandshakes(listener.fd);
    (await late).close(); // the retried SYN (about 1 s later) is answered
    assertEquals(sampleQueues([listener])[0].length, 2);
    resumeHandshakes(listener.fd); // twice is harmless
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
