/**
 * Unit tests of the swap machinery's parsing, plus one real swap in this
 * process: a `Deno.serve` listener made to accept from another socket.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import * as libc from "./_libc.ts";
import { findRegistration, parseEpollFdinfo, socketInode, swapUnder, verifySwap } from "./_swap.ts";

Deno.test("parseEpollFdinfo: reads fd, events, token and inode of each item", () => {
  const text = [
    "pos:\t0",
    "flags:\t02000002",
    "mnt_id:\t17",
    "ino:\t1038",
    "tfd:        4 events: 80002019 data:                0  pos:0 ino:40e sdev:10",
    "tfd:       21 events: 8000201d data:     558b9fd5bc80  pos:0 ino:bf7a sdev:9",
    "",
  ].join("\n");
  assertEquals(parseEpollFdinfo(5, text), [
    { epfd: 5, tfd: 4, events: 0x80002019, data: 0n, ino: "1038" },
    { epfd: 5, tfd: 21, events: 0x8000201d, data: 0x558b9fd5bc80n, ino: "49018" },
  ]);
  assertEquals(parseEpollFdinfo(5, "pos:\t0\nflags:\t02\n"), []);
});

Deno.test("swap: a Deno.serve listener accepts from the socket put under it", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    return new Response("swapped");
  });
  try {
    const port = (server.addr as Deno.NetAddr).port;
    const fd = [...Deno.readDirSync("/proc/self/fd")].map((e) => Number(e.name)).find((n) => {
      try {
        return socketInode(n) !== undefined && libc.isListeningStreamSocket(n) &&
          libc.tcpPort(n) === port;
      } catch {
        return false;
      }
    })!;
    const reg = findRegistration(fd);
    const other = libc.listenPrivate();
    const otherPort = libc.tcpPort(other);
    const ino = socketInode(other)!;
    swapUnder(fd, other, reg);
    libc.close(other);
    verifySwap(fd, reg, ino);
    const res = await fetch(`http://127.0.0.1:${otherPort}/`);
    assertEquals(await res.text(), "swapped");
    // The original port is closed now: nothing listens there.
    const refused = await Deno.connect({ hostname: "127.0.0.1", port }).then(
      (c) => (c.close(), false),
      () => true,
    );
    assert(refused);
  } finally {
    await server.shutdown();
  }
});

Deno.test("epollEvent: packed 12 bytes on x86_64, 16 bytes on aarch64", () => {
  const token = 0x0102030405060708n;
  assertEquals(
    [...libc.epollEvent(0x8000201d, token, "x86_64")],
    [0x1d, 0x20, 0, 0x80, 8, 7, 6, 5, 4, 3, 2, 1],
  );
  assertEquals(
    [...libc.epollEvent(0x8000201d, token, "aarch64")],
    [0x1d, 0x20, 0, 0x80, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1],
  );
});
