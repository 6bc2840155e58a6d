import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseBind } from "../config/bind.ts";
import { type Listener, openListener } from "../sockets/listeners.ts";
import {
  parseUnixDiagAnswer,
  type QueueSample,
  sampleQueues,
  socketInode,
  tcpQueue,
  unixDiagRequest,
} from "./queue.ts";

/** Samples until the queue holds `length` (the kernel finishes a handshake asynchronously). */
async function queueReaches(listener: Listener, length: number): Promise<QueueSample> {
  const deadline = performance.now() + 5000;
  for (;;) {
    const [sample] = sampleQueues([listener]);
    if (sample?.length === length || performance.now() > deadline) {
      return { length: sample?.length ?? -1, capacity: sample?.capacity ?? -1 };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function connectAll(n: number, options: Deno.ConnectOptions | Deno.UnixConnectOptions) {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) conns.push(await Deno.connect(options as Deno.ConnectOptions));
  return conns;
}

Deno.test("TCP: a listener nobody accepts on reports N waiting connections and its backlog", async () => {
  const listener = await openListener(parseBind("127.0.0.1:0", "/"), { backlog: 64 });
  try {
    assertEquals(tcpQueue(listener.fd), { length: 0, capacity: 64 });
    const port = Number(listener.address.split(":").pop());
    const conns = await connectAll(5, { hostname: "127.0.0.1", port });
    assertEquals(await queueReaches(listener, 5), { length: 5, capacity: 64 });
    for (const c of conns) c.close();
  } finally {
    listener.close();
  }
});

Deno.test("TCP over IPv6 loopback reads the same way", async () => {
  let listener: Listener;
  try {
    listener = await openListener(parseBind("[::1]:0", "/"), { backlog: 16 });
  } catch {
    console.log("skipped: no IPv6 loopback here");
    return;
  }
  try {
    const port = Number(listener.address.split(":").pop());
    const conns = await connectAll(2, { hostname: "::1", port });
    assertEquals(await queueReaches(listener, 2), { length: 2, capacity: 16 });
    for (const c of conns) c.close();
  } finally {
    listener.close();
  }
});

Deno.test("unix: sock_diag reports the queue length and backlog of a listener", async () => {
  const dir = await Deno.makeTempDir();
  const listener = await openListener(parseBind(`unix:${dir}/q.sock`, "/"), { backlog: 32 });
  try {
    assertEquals(tcpQueue(listener.fd), undefined);
    if (sampleQueues([listener]).length === 0) {
      console.log("skipped: this kernel has no unix_diag (sock_diag for unix sockets)");
      return;
    }
    assertEquals(await queueReaches(listener, 0), { length: 0, capacity: 32 });
    const conns = await connectAll(3, { transport: "unix", path: `${dir}/q.sock` });
    assertEquals(await queueReaches(listener, 3), { length: 3, capacity: 32 });
    for (const c of conns) c.close();
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sampleQueues keeps listener order and leaves out what is not a listener", async () => {
  const a = await openListener(parseBind("127.0.0.1:0", "/"), { backlog: 8 });
  const b = await openListener(parseBind("127.0.0.1:0", "/"), { backlog: 9 });
  const file = await Deno.open(await Deno.makeTempFile());
  try {
    // A plain file's fd: neither TCP nor a socket inode; skipped, no throw.
    const fileFd = Number(
      [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name).find((fd) => {
        try {
          return Deno.readLinkSync(`/proc/self/fd/${fd}`).startsWith("/tmp/");
        } catch {
          return false;
        }
      }),
    );
    const queues = sampleQueues([
      { fd: b.fd, address: "b" },
      { fd: fileFd, address: "file" },
      { fd: a.fd, address: "a" },
      { fd: 987654, address: "closed" },
    ]);
    assertEquals(queues, [
      { listener: "b", length: 0, capacity: 9 },
      { listener: "a", length: 0, capacity: 8 },
    ]);
    assertEquals(socketInode(987654), undefined);
  } finally {
    file.close();
    a.close();
    b.close();
  }
});

Deno.test("parseUnixDiagAnswer: an error answer or a foreign inode gives no sample", () => {
  const req = unixDiagRequest(42, 1);
  assertEquals(req.length, 40);
  // NLMSG_ERROR
  const err = new Uint8Array(36);
  const ev = new DataView(err.buffer);
  ev.setUint32(0, 36, true);
  ev.setUint16(4, 2, true);
  ev.setInt32(16, -2, true);
  assertEquals(parseUnixDiagAnswer(err, 42), undefined);
  // A well-formed answer with an RQLEN attribute.
  const ok = new Uint8Array(16 + 16 + 12);
  const ov = new DataView(ok.buffer);
  ov.setUint32(0, ok.length, true);
  ov.setUint16(4, 20, true);
  ov.setUint32(20, 42, true);
  ov.setUint16(32, 12, true);
  ov.setUint16(34, 4, true);
  ov.setUint32(36, 7, true);
  ov.setUint32(40, 128, true);
  assertEquals(parseUnixDiagAnswer(ok, 42), { length: 7, capacity: 128 });
  assertEquals(parseUnixDiagAnswer(ok, 43), undefined);
  assertEquals(parseUnixDiagAnswer(ok.subarray(0, 20), 42), undefined);
});
