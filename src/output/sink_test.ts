// The bounded, non-blocking line sink: order, whole-line drops, the notice, half lines.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { LineSink, MAX_ROOM_WAIT_MS, MAX_WRITE_BYTES, workerLineWriter } from "./sink.ts";

/** A target whose writes wait until released, as a pipe whose reader stalled. */
class StalledTarget {
  written: string[] = [];
  #release?: () => void;
  #gate: Promise<void> = new Promise((r) => this.#release = r);
  failNext?: { after: number };
  async write(p: Uint8Array): Promise<number> {
    await this.#gate;
    const fail = this.failNext;
    if (fail) {
      this.failNext = undefined;
      if (fail.after > 0) {
        this.failNext = { after: 0 }; // a short write, then the error (as ENOSPC does)
        this.written.push(new TextDecoder().decode(p.subarray(0, fail.after)));
        return fail.after;
      }
      throw new Error("ENOSPC");
    }
    this.written.push(new TextDecoder().decode(p));
    return p.length;
  }
  open(): void {
    this.#release!();
  }
  text(): string {
    return this.written.join("");
  }
}

Deno.test("a stalled reader: whole lines dropped past the bound, counted, one notice once it reads", async () => {
  const target = new StalledTarget();
  const sink = new LineSink(target, { maxQueuedBytes: 100, notice: (n) => `dropped ${n}\n` });
  let accepted = 0;
  for (let i = 0; i < 50; i++) if (sink.write(`line ${String(i).padStart(3, "0")}\n`)) accepted++;
  assert(sink.queuedBytes <= 100);
  assertEquals(sink.dropped, 50 - accepted);
  target.open();
  await sink.flush(1000);
  const lines = target.text().split("\n").filter((l) => l);
  assertEquals(lines.length, accepted + 1);
  assert(lines.every((l) => /^line \d{3}$|^dropped \d+$/.test(l)), "no line cut");
  assertEquals(lines.filter((l) => l.startsWith("dropped")), [`dropped ${50 - accepted}`]);
});

Deno.test("while the reader keeps up nothing is lost, and writes stay within PIPE_BUF", async () => {
  const sizes: number[] = [];
  let text = "";
  const sink = new LineSink({
    write: (p) => {
      sizes.push(p.length);
      text += new TextDecoder().decode(p);
      return Promise.resolve(p.length);
    },
  });
  for (let i = 0; i < 100_000; i++) {
    sink.write(`${i}\n`);
    if (i % 1000 === 0) await sink.flush(1000); // a reader that keeps up
  }
  await sink.flush(5000);
  assertEquals(sink.dropped, 0);
  assertEquals(text.split("\n").length - 1, 100_000);
  assert(sizes.every((n) => n <= MAX_WRITE_BYTES));
});

Deno.test("a write that fails part-way (full disk): counted, and the next line starts on its own", async () => {
  const target = new StalledTarget();
  const sink = new LineSink(target, { notice: (n) => `dropped ${n}\n` });
  target.failNext = { after: 3 };
  target.open();
  sink.write("first line\n");
  await sink.flush(1000);
  assertEquals(sink.dropped, 1);
  sink.write("second line\n");
  await sink.flush(1000);
  assertEquals(target.text(), "fir\nsecond line\ndropped 1\n");
});

Deno.test("flush waits a bounded time when the reader never comes back", async () => {
  const sink = new LineSink(new StalledTarget());
  sink.write("stuck\n");
  const start = performance.now();
  await sink.flush(100);
  assert(performance.now() - start < 1000);
});

Deno.test("worker lines wait for room while the reader is slow, then drop once it stalled", async () => {
  const target = new StalledTarget();
  const sink = new LineSink(target, { maxQueuedBytes: 64 });
  const write = workerLineWriter(sink);
  const start = performance.now();
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 40; i++) writes.push(write(`line ${i}`)); // 7-8 bytes each
  await Promise.all(writes);
  const waited = performance.now() - start;
  assert(waited >= MAX_ROOM_WAIT_MS - 50, `waited ${waited} ms once`);
  assert(waited < 3 * MAX_ROOM_WAIT_MS, `not once per line: ${waited} ms`);
  assert(sink.dropped > 0);
  target.open();
  await sink.flush(1000);
});
