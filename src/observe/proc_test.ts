import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { CpuMeter, formatBytes, parseProc, readProc } from "./proc.ts";

const MiB = 1024 * 1024;

/** A real child that allocates `mib` MiB, touches it, says "ready", then spins or sleeps. */
function child(mib: number, spin: boolean): Deno.ChildProcess {
  const code = `
    const buf = new Uint8Array(${mib} * 1024 * 1024); buf.fill(1);
    console.log("ready");
    if (${spin}) { const end = Date.now() + 60000; while (Date.now() < end) {} }
    else setTimeout(() => {}, 60000);
  `;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
}

async function untilReady(p: Deno.ChildProcess): Promise<void> {
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("child ended early");
    seen += value;
  }
  reader.releaseLock();
}

async function finish(p: Deno.ChildProcess): Promise<void> {
  p.kill("SIGKILL");
  await p.status;
  await p.stdout.cancel().catch(() => {});
}

Deno.test("readProc: a process that allocated 64 MiB shows at least that much RSS", async () => {
  const p = child(64, false);
  try {
    await untilReady(p);
    const sample = readProc(p.pid)!;
    assert(sample.rssBytes >= 64 * MiB, `rss ${sample.rssBytes}`);
    assert(sample.rssBytes < 1024 * MiB, `rss ${sample.rssBytes}`);
    assert(sample.cpuSeconds >= 0);
  } finally {
    await finish(p);
  }
});

Deno.test("readProc: a busy process accumulates CPU time; a gone one gives undefined", async () => {
  const p = child(1, true);
  let pid = 0;
  try {
    await untilReady(p);
    pid = p.pid;
    const first = readProc(pid)!;
    // Wait for the event "it burned more CPU", bounded; no fixed sleep decides the outcome.
    const deadline = performance.now() + 10_000;
    let later = first;
    while (later.cpuSeconds < first.cpuSeconds + 0.2 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      later = readProc(pid) ?? later;
    }
    assert(
      later.cpuSeconds >= first.cpuSeconds + 0.2,
      `cpu ${first.cpuSeconds} -> ${later.cpuSeconds}`,
    );
  } finally {
    await finish(p);
  }
  assertEquals(readProc(pid), undefined);
  assertEquals(readProc(-1), undefined);
  assertEquals(readProc(0), undefined);
});

Deno.test("parseProc: a comm with spaces and parentheses is read after the last ')'", () => {
  const stat = "123 (my (odd) proc) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 " +
    "1000 200000000 5000 18446744073709551615";
  assertEquals(parseProc(stat, "50000 2560 300 1 0 400 0", 4096, 100), {
    rssBytes: 2560 * 4096,
    cpuSeconds: 3,
  });
  assertEquals(parseProc("garbage", "1 2", 4096, 100), undefined);
  assertEquals(parseProc(stat, "", 4096, 100), undefined);
});

Deno.test("CpuMeter: lifetime average first, then the rate since the previous sample", () => {
  const meter = new CpuMeter();
  // 1 s of CPU over 4 s of life: 25 %.
  assertEquals(meter.percent(10, 1, 0, 4000), 25);
  // Too soon: the previous value.
  assertEquals(meter.percent(10, 1.1, 100, 4100), 25);
  // 0.5 s CPU over 1 s: 50 %.
  assertEquals(meter.percent(10, 1.5, 1000, 5000), 50);
  // Two cores' worth is 200 %.
  assertEquals(meter.percent(10, 3.5, 2000, 6000), 200);
  // A reused pid (CPU time went down) starts again from its lifetime average.
  assertEquals(meter.percent(10, 0.1, 3000, 1000), 10);
  meter.retain([]);
  assertEquals(meter.percent(10, 0.1, 3100, 0), 0);
});

Deno.test("formatBytes", () => {
  assertEquals(formatBytes(512), "512 B");
  assertEquals(formatBytes(800 * 1024), "800 KiB");
  assertEquals(formatBytes(52.4 * MiB), "52.4 MiB");
  assertEquals(formatBytes(1.5 * 1024 * MiB), "1.5 GiB");
});
