import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  CONTINUED_MARKER,
  lineWriter,
  MAX_BATCH_BYTES,
  MAX_LINE_BYTES,
  pipePrefixed,
  type PrefixOptions,
} from "./prefix.ts";

const encoder = new TextEncoder();

/** A stream that yields the given chunks (strings are UTF-8 encoded). */
function streamOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks.map((c) => typeof c === "string" ? encoder.encode(c) : c));
}

/** Runs pipePrefixed over `chunks` and returns the lines written. */
async function collect(
  chunks: (string | Uint8Array)[],
  over: Partial<PrefixOptions> = {},
): Promise<string[]> {
  const lines: string[] = [];
  await pipePrefixed(streamOf(chunks), {
    id: 3,
    pid: 1234,
    stream: "stdout",
    format: "text",
    write: (line) => {
      lines.push(line);
      return Promise.resolve();
    },
    ...over,
  });
  return lines;
}

Deno.test("pipePrefixed: lines are split across chunk boundaries and prefixed", async () => {
  assertEquals(await collect(["hel", "lo\nwor", "ld\n\nlast"]), [
    "[worker 3] hello",
    "[worker 3] world",
    "[worker 3] ",
    "[worker 3] last",
  ]);
  assertEquals(await collect(["a\r\nb\r\n"]), ["[worker 3] a", "[worker 3] b"], "CRLF");
  assertEquals(await collect([]), []);
  assertEquals(await collect(["\n"]), ["[worker 3] "]);
  assertEquals(await collect(["no newline at all"]), ["[worker 3] no newline at all"]);
});

Deno.test("pipePrefixed: a UTF-8 character split between chunks stays whole", async () => {
  const bytes = encoder.encode("grüße 😀\n");
  const chunks = [...bytes].map((b) => new Uint8Array([b])); // one byte per chunk
  assertEquals(await collect(chunks), ["[worker 3] grüße 😀"]);
});

Deno.test("pipePrefixed: JSON lines", async () => {
  const lines = await collect(["one\ntw", 'o "quoted"\n'], { format: "json", stream: "stderr" });
  assertEquals(lines.length, 2);
  const records = lines.map((l) => JSON.parse(l));
  for (const r of records) {
    assertEquals(Object.keys(r), ["time", "event", "worker", "stream", "line"]);
    assert(!Number.isNaN(Date.parse(r.time)), r.time);
    assertEquals([r.event, r.worker, r.stream], ["worker.output", { id: 3, pid: 1234 }, "stderr"]);
  }
  assertEquals(records.map((r) => r.line), ["one", 'two "quoted"']);
});

Deno.test("pipePrefixed: a line over 64 KiB is split with a marker, on a character boundary", async () => {
  // 'é' is two bytes: an odd prefix puts a character across the 64 KiB mark.
  const long = "x" + "é".repeat(MAX_LINE_BYTES); // 1 + 128 KiB bytes
  const lines = await collect([long.slice(0, 5000), long.slice(5000) + "\nafter\n"]);
  assertEquals(lines.length, 4);
  const pieces = lines.slice(0, 3).map((l) => l.slice("[worker 3] ".length));
  assert(pieces[0].endsWith(CONTINUED_MARKER) && pieces[1].endsWith(CONTINUED_MARKER));
  assert(!pieces[2].endsWith(CONTINUED_MARKER));
  const text = pieces.map((p) => p.replace(CONTINUED_MARKER, "")).join("");
  assertEquals(text, long, "nothing lost, no replacement characters");
  for (const p of pieces) {
    assert(encoder.encode(p).length <= MAX_LINE_BYTES + CONTINUED_MARKER.length);
  }
  assertEquals(lines[3], "[worker 3] after");

  const json = await collect(["y".repeat(MAX_LINE_BYTES + 10)], { format: "json" });
  assertEquals(json.map((l) => JSON.parse(l).continued), [true, undefined]);
  assertEquals(json.map((l) => JSON.parse(l).line.length), [MAX_LINE_BYTES, 10]);

  // Exactly 64 KiB, with the line break in the next chunk: one line, not split.
  const exact = await collect(["z".repeat(MAX_LINE_BYTES), "\nnext"]);
  assertEquals(exact.map((l) => l.length), ["[worker 3] ".length + MAX_LINE_BYTES, 15]);
});

Deno.test("pipePrefixed: a failing write drops the line and the stream is still drained", async () => {
  const written: string[] = [];
  let calls = 0;
  await pipePrefixed(streamOf(["a\nb\nc\n"]), {
    id: 0,
    pid: 1,
    stream: "stdout",
    format: "text",
    write: (line) => {
      if (calls++ === 1) return Promise.reject(new Error("EPIPE"));
      written.push(line);
      return Promise.resolve();
    },
  });
  assertEquals(written, ["[worker 0] a", "[worker 0] c"]);
});

Deno.test("pipePrefixed: a failing stream ends the copy without rejecting", async () => {
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (n++ === 0) controller.enqueue(encoder.encode("partial line"));
      else controller.error(new Error("pipe broke"));
    },
  });
  const lines: string[] = [];
  await pipePrefixed(stream, {
    id: 1,
    pid: 1,
    stream: "stderr",
    format: "text",
    write: (l) => Promise.resolve(void lines.push(l)),
  });
  assertEquals(lines, ["[worker 1] partial line"]);
});

Deno.test("lineWriter: concurrent writers never interleave, even with short writes", async () => {
  let out = "";
  const decoder = new TextDecoder();
  // A target that takes at most 7 bytes per call and yields between calls.
  const target = {
    async write(p: Uint8Array) {
      await new Promise((r) => setTimeout(r, 0));
      const n = Math.min(7, p.length);
      out += decoder.decode(p.subarray(0, n), { stream: true });
      return n;
    },
  };
  const write = lineWriter(target);
  const writer = async (name: string) => {
    for (let i = 0; i < 50; i++) await write(`${name} line ${i} ${"-".repeat(i)}`);
  };
  await Promise.all([writer("A"), writer("B"), writer("C")]);
  const lines = out.split("\n");
  assertEquals(lines.pop(), "");
  assertEquals(lines.length, 150);
  for (const name of ["A", "B", "C"]) {
    const mine = lines.filter((l) => l.startsWith(`${name} `));
    assertEquals(mine, [...Array(50).keys()].map((i) => `${name} line ${i} ${"-".repeat(i)}`));
  }
});

Deno.test("lineWriter: a failed write rejects its lines only; later lines are written", async () => {
  let fail = true;
  const got: string[] = [];
  const write = lineWriter({
    write(p: Uint8Array) {
      if (fail) {
        fail = false;
        return Promise.reject(new Error("closed"));
      }
      got.push(new TextDecoder().decode(p));
      return Promise.resolve(p.length);
    },
  });
  const outcome = (p: Promise<void>) => p.then(() => "ok", (e) => `failed: ${e.message}`);
  assertEquals(await outcome(write("one")), "failed: closed");
  assertEquals(await Promise.all([outcome(write("two")), outcome(write("three"))]), ["ok", "ok"]);
  assertEquals(got, ["two\nthree\n"], "lines handed over together are written together");
});

Deno.test("lineWriter: batches stay under MAX_BATCH_BYTES, a longer line goes alone", async () => {
  const sizes: number[] = [];
  const write = lineWriter({
    write(p: Uint8Array) {
      sizes.push(p.length);
      return Promise.resolve(p.length);
    },
  });
  const line = "x".repeat(1499); // 1500 bytes with its line break
  const huge = "y".repeat(MAX_BATCH_BYTES + 5);
  await Promise.all([write(line), write(line), write(line), write(huge), write("z")]);
  assertEquals(MAX_BATCH_BYTES, 4096);
  assertEquals(sizes, [3000, 1500, MAX_BATCH_BYTES + 6, 2]);
});

/** A real worker printing `count` numbered lines of varying length as fast as it can. */
function pythonPrinter(count: number, tag: string): Deno.ChildProcess {
  const code = [
    "import sys",
    "w = sys.stdout.write",
    `for i in range(${count}):`,
    `    w('${tag} %d %s\\n' % (i, 'x' * (i % 300)))`,
  ].join("\n");
  return new Deno.Command("python3", { args: ["-c", code], stdout: "piped", stderr: "inherit" })
    .spawn();
}

function checkLines(lines: string[], id: number, tag: string, count: number): void {
  const prefix = `[worker ${id}] ${tag} `;
  const mine = lines.filter((l) => l.startsWith(`[worker ${id}] `));
  assertEquals(mine.length, count, `worker ${id}: every line arrived`);
  for (let i = 0; i < count; i++) {
    const expected = `${prefix}${i} ${"x".repeat(i % 300)}`;
    if (mine[i] !== expected) {
      throw new Error(`worker ${id}, line ${i}: expected ${expected.slice(0, 80)}, got ${mine[i]}`);
    }
  }
}

Deno.test("pipePrefixed: two python workers × 100,000 lines into one file, whole and in order", async () => {
  const COUNT = 100_000;
  const dir = await Deno.makeTempDir();
  const file = await Deno.open(`${dir}/out.log`, { write: true, create: true });
  try {
    const write = lineWriter(file);
    const workers = [pythonPrinter(COUNT, "alpha"), pythonPrinter(COUNT, "beta")];
    const pipes = workers.map((child, id) =>
      pipePrefixed(child.stdout, {
        id,
        pid: child.pid,
        stream: "stdout",
        format: "text",
        write,
      })
    );
    await Promise.all(pipes);
    for (const child of workers) assert((await child.status).success);
    file.close();
    const lines = (await Deno.readTextFile(`${dir}/out.log`)).split("\n");
    assertEquals(lines.pop(), "", "ends with a line break");
    assertEquals(lines.length, 2 * COUNT);
    checkLines(lines, 0, "alpha", COUNT);
    checkLines(lines, 1, "beta", COUNT);
    // They really ran concurrently: the outputs are mixed, line by line.
    const firstBeta = lines.findIndex((l) => l.startsWith("[worker 1]"));
    assert(firstBeta < COUNT, "worker 1's lines are not all after worker 0's");
  } finally {
    try {
      file.close();
    } catch { /* closed above */ }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipePrefixed: a slow output blocks the worker, not the caller", async () => {
  // The output is stalled until `release`: the worker must fill its pipe and block.
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const lines: string[] = [];
  const write = async (line: string) => {
    await gate;
    lines.push(line);
  };
  const COUNT = 50_000; // ~8 MB: far more than a pipe buffer
  const child = pythonPrinter(COUNT, "slow");
  const piping = pipePrefixed(child.stdout, {
    id: 0,
    pid: child.pid,
    stream: "stdout",
    format: "text",
    write,
  });
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  // The event loop (the master's) stays free meanwhile: timers keep firing.
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  await new Promise((r) => setTimeout(r, 700));
  clearInterval(ticker);
  assert(ticks >= 20, `the event loop kept running (${ticks} ticks)`);
  assertEquals(exited, false, "the worker is blocked on its full pipe");
  assertEquals(lines.length, 0);
  release();
  await piping;
  assert((await status).success);
  checkLines(lines, 0, "slow", COUNT);
});
