import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { parseCli } from "../config/cli.ts";
import { ConfigError } from "../errors.ts";
import { FakeHandler, SAMPLE_STATUS } from "./_testing.ts";
import type { StatusReport } from "./api.ts";
import { type CtlRequest, formatStatus, runCtl } from "./ctl.ts";
import { startControlServer } from "./server.ts";
import { cpuPercents, renderTopLines, renderTopScreen, runTop } from "./top.ts";

const MiB = 1024 * 1024;

/** SAMPLE_STATUS with the saturation fields filled in. */
function saturated(cpu0 = 10, cpu1 = 4): StatusReport {
  return {
    master: {
      ...SAMPLE_STATUS.master,
      listeners: [
        { address: "127.0.0.1:8000", queue_length: 3, queue_capacity: 2048 },
        { address: "unix:/run/app.sock", queue_length: 0, queue_capacity: 128 },
      ],
      autoscale: { min: 2, max: 16 },
      max_worker_memory_bytes: 512 * MiB,
    },
    workers: [
      {
        ...SAMPLE_STATUS.workers[0],
        memory_bytes: 52.4 * MiB,
        memory_source: "pss",
        processes: 5,
        cpu_s: cpu0,
        cpu_percent: 12.5,
      },
      {
        ...SAMPLE_STATUS.workers[1],
        memory_bytes: 600 * MiB,
        memory_source: "pss",
        processes: 1,
        cpu_s: cpu1,
        cpu_percent: 1,
        stop_reason: "max_worker_memory",
      },
      { ...SAMPLE_STATUS.workers[2], memory_bytes: null, cpu_s: null, cpu_percent: null },
    ],
  };
}

Deno.test("ctl status: queue, memory limit, autoscale bounds and MEM/PROCS/CPU when reported", () => {
  const lines = formatStatus(saturated()).split("\n");
  assertEquals(
    lines[2],
    "workers  2 desired (autoscale 2..16), 1 ready, 1 booting, 1 stopping, generation 2",
  );
  assertEquals(lines[3], "queue    127.0.0.1:8000 3/2048, unix:/run/app.sock 0/128");
  assertEquals(lines[4], "memory   workers above 512 MiB are recycled");
  assertMatch(
    lines[6],
    /^ID +PID +GEN +STATE +AGE +MEM +PROCS +CPU +RESTARTS +LAST EXIT +STATUS$/,
  );
  assertMatch(
    lines[7],
    /^0 +4250 +2 +ready +3m12s +52\.4 MiB +5 +12\.5% +0 +- +serving 3 requests$/,
  );
  assertMatch(
    lines[8],
    /^1 +4251 +1 +stopping \(max_worker_memory\) +2h05m +600 MiB +1 +1\.0% +2 /,
  );
  assertMatch(lines[9], /^1 +- +2 +booting +0s +- +- +- +2 +code 1 +-$/);
  // Without the fields (an older master), the table is as before.
  assert(!formatStatus(SAMPLE_STATUS).includes("MEM"));
});

Deno.test("ctl top: CPU from the CPU seconds between two refreshes, else the master's figure", () => {
  const first = { report: saturated(10, 4), at: 0 };
  const second = { report: saturated(10.5, 4), at: 1000 };
  assertEquals(cpuPercents(first), new Map([[4250, 12.5], [4251, 1]]));
  assertEquals(cpuPercents(second, first), new Map([[4250, 50], [4251, 0]]));
});

Deno.test("ctl top: the terminal screen and the plain lines", () => {
  const first = { report: saturated(10, 4), at: 0 };
  const second = { report: saturated(12, 4), at: 2000 };
  const clock = new Date("2026-11-28T21:00:05Z");
  const screen = renderTopScreen(second, first, clock).split("\n");
  assertEquals(screen[0], "arbiter top  21:00:05  master pid 4242, up 2h05m, running, reloading");
  assertEquals(
    screen[1],
    "workers  1/2 ready (autoscale 2..16), generation 2, memory 652 MiB (PSS)",
  );
  assertEquals(screen[2], "queue    127.0.0.1:8000 3/2048, unix:/run/app.sock 0/128");
  assertMatch(
    screen[5],
    /^0 +4250 +2 +ready +3m12s +52\.4 MiB +5 +100\.0% +0 +serving 3 requests$/,
  );
  const lines = renderTopLines(second, first, clock).trimEnd().split("\n");
  assertEquals(lines.length, 4);
  assertEquals(
    lines[0],
    "2026-11-28T21:00:05.000Z master pid=4242 phase=running desired=2 ready=1 generation=2 " +
      "queue=127.0.0.1:8000:3/2048 queue=unix:/run/app.sock:0/128",
  );
  assertEquals(
    lines[1],
    "2026-11-28T21:00:05.000Z worker id=0 pid=4250 generation=2 state=ready age_s=192.5 " +
      `memory_bytes=${52.4 * MiB} processes=5 cpu_percent=100 restarts=0`,
  );
  assert(!lines.join("").includes("\x1b"), "no escape sequences when piped");
});

Deno.test("runTop: N refreshes, the wait between them, and an early end", async () => {
  let out = "";
  let waits = 0;
  let t = 0;
  const io = {
    status: () => Promise.resolve(saturated(t, 0)),
    out: (text: string) => out += text,
    tty: true,
    wait: (ms: number) => {
      waits++;
      t += ms / 1000;
      return Promise.resolve(waits < 2);
    },
    now: () => t * 1000,
  };
  await runTop(io, 500, 5);
  // The second wait said to end: two screens, each starting by clearing the terminal.
  assertEquals(out.split("\x1b[H\x1b[2J").length - 1, 2);
  assertEquals(waits, 2);
});

Deno.test("arbiter ctl top -n 2 over a real control socket, piped: plain lines", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-top-" });
  const handler = new FakeHandler();
  handler.report = saturated();
  const server = await startControlServer(`${dir}/ctl.sock`, handler);
  try {
    const req = parseCli([
      "ctl",
      "-s",
      `${dir}/ctl.sock`,
      "top",
      "--interval",
      "0.2",
      "-n",
      "2",
    ]) as CtlRequest;
    assertEquals([req.verb, req.interval, req.iterations], ["top", 0.2, 2]);
    let out = "";
    let err = "";
    const started = performance.now();
    const code = await runCtl(req, {}, "/", {
      out: (t) => out += t,
      err: (t) => err += t,
      tty: false,
    });
    assertEquals([code, err], [0, ""]);
    assert(performance.now() - started >= 190, "waited one interval between the refreshes");
    assertEquals(out.split("\n").filter((l) => / master pid=4242 /.test(l)).length, 2);
    assertEquals(out.split("\n").filter((l) => / worker id=/.test(l)).length, 6);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ctl top options: checked, and refused for other requests", () => {
  const bad = (args: string[], message: RegExp) => {
    try {
      parseCli(["ctl", ...args]);
    } catch (error) {
      assert(error instanceof ConfigError);
      assertMatch(error.message, message);
      return;
    }
    throw new Error(`accepted: ${args.join(" ")}`);
  };
  bad(["top", "--interval", "0"], /ctl top --interval: expected seconds from 0\.2 to 3600/);
  bad(["top", "--interval", "soon"], /got "soon"/);
  bad(["top", "-n", "0"], /ctl top -n: expected a number of refreshes ≥ 1/);
  bad(["status", "--interval", "1"], /ctl status: --interval applies only to `ctl top`/);
  const plain = parseCli(["ctl", "-s", "/x.sock", "top"]) as CtlRequest;
  assertEquals([plain.interval, plain.iterations], [undefined, undefined]);
});
