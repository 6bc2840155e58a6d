/** Sealed memfds: what one writes, the same process reads back only through the checks. */
import { deepStrictEqual, ok } from "node:assert/strict";
import { readSealedMemfd, writeSealedMemfd } from "./memfd.ts";

Deno.test("a sealed memfd round-trips and is closed after reading", () => {
  const bytes = new TextEncoder().encode('{"hello":1}');
  const fd = writeSealedMemfd("memfd-test", bytes);
  const read = readSealedMemfd(fd, "memfd-test", 1024);
  deepStrictEqual("bytes" in read ? read.bytes : read, bytes);
  ok("why" in readSealedMemfd(fd, "memfd-test", 1024), "closed after the read");
});

Deno.test("a memfd with another name, too large, or an fd that is no memfd is refused", () => {
  const fd = writeSealedMemfd("memfd-other", new Uint8Array(100));
  const wrongName = readSealedMemfd(fd, "memfd-test", 1024);
  ok("why" in wrongName && wrongName.why.includes("not our memfd"));
  deepStrictEqual(readSealedMemfd(fd, "memfd-other", 100), { bytes: new Uint8Array(100) });
  const big = writeSealedMemfd("memfd-big", new Uint8Array(100));
  const tooBig = readSealedMemfd(big, "memfd-big", 10);
  ok("why" in tooBig && tooBig.why.includes("over 10 bytes"));
  ok("why" in readSealedMemfd(big, "memfd-big", 100), "a refused memfd by our name is closed");
  ok("why" in readSealedMemfd(0, "memfd-test", 10));
  ok("why" in readSealedMemfd(-1, "memfd-test", 10));
  ok("why" in readSealedMemfd(99999, "memfd-test", 10));
});
