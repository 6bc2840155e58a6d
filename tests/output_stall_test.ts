// The master never blocks on its own output: with its stderr on a pipe nobody
// reads, it still serves, answers, stops; lines are dropped whole and counted.
import { ok as assert } from "node:assert/strict";
import { freePort, MAIN_TS, startArbiter, waitFor, waitForHttp } from "./_harness.ts";
import { PY_WORKER, tempDir } from "./_workers.ts";

/** A worker that writes lines to stderr as fast as it can, forever. */
const CHATTY = [
  "python3",
  "-c",
  "import sys\ni=0\nwhile True:\n  sys.stderr.write('chatty line %d\\n' % i); i+=1",
];

async function droppedLines(metrics: string): Promise<number | false> {
  const r = await fetch(`http://${metrics}/metrics`);
  const m = /^arbiter_log_lines_dropped_total (\d+)$/m.exec(await r.text());
  return m !== null && Number(m[1]) > 0 && Number(m[1]);
}

/** Reads `file` until its text matches `pattern` (the test's timeout bounds it). */
async function readUntil(file: Deno.FsFile, pattern: RegExp): Promise<void> {
  const buf = new Uint8Array(65536);
  const decoder = new TextDecoder();
  let tail = "";
  while (true) {
    const n = await file.read(buf);
    if (n === null) throw new Error(`end of output before ${pattern}`);
    tail = (tail + decoder.decode(buf.subarray(0, n), { stream: true })).slice(-100_000);
    if (pattern.test(tail)) return;
  }
}

for (const output of ["prefix", "inherit"]) {
  Deno.test(`worker_output = ${output}: a stalled stderr reader freezes nothing; lines dropped and counted`, async () => {
    await using dir = await tempDir();
    const fifo = `${dir.path}/stderr.fifo`;
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    // Opened read-write, so the master's open does not wait for a reader; never read until the end.
    const reader = await Deno.open(fifo, { read: true, write: true });
    const metrics = `127.0.0.1:${freePort()}`;
    const control = `${dir.path}/ctl.sock`;
    const config = `${dir.path}/app.toml`;
    await Deno.writeTextFile(
      config,
      [
        `command = ${JSON.stringify(CHATTY)}`,
        "workers = 2",
        `bind = "127.0.0.1:${freePort()}"`,
        `worker_output = "${output}"`,
        `metrics_bind = "${metrics}"`,
        `control_socket = "${control}"`,
      ].join("\n"),
    );
    await using master = startArbiter(["--config", config], {
      cmd: [
        "sh",
        "-c",
        `exec "$0" "$@" 2>'${fifo}'`,
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        MAIN_TS,
      ],
    });
    await waitForHttp(`http://${metrics}/readyz`, { timeoutMs: 20_000 });
    if (output === "prefix") {
      const dropped = await waitFor(() => droppedLines(metrics), { timeoutMs: 15_000 });
      assert(dropped > 0);
      // The reader comes back: one line says how many were lost.
      await readUntil(reader, /\d+ output line\(s\) were dropped/);
    }
    // The loop is alive: it answers /livez (a probe through the event queue) and stops on TERM.
    await waitForHttp(`http://${metrics}/livez`);
    master.signal("SIGTERM");
    const status = await master.waitExit(15_000);
    assert(status.code === 0, `exit ${status.code}`);
    reader.close();
  });
}

Deno.test("USR1 whose log file cannot be reopened says so on stderr, not only in the old file", async () => {
  await using dir = await tempDir();
  const logs = `${dir.path}/logs`;
  await Deno.mkdir(logs);
  await using master = startArbiter([
    "-w",
    "1",
    "-b",
    `127.0.0.1:${freePort()}`,
    "--log-file",
    `${logs}/arbiter.log`,
    "--",
    ...PY_WORKER,
  ]);
  await waitFor(async () =>
    (await Deno.readTextFile(`${logs}/arbiter.log`).catch(() => "")).includes("is ready")
  );
  await Deno.rename(logs, `${dir.path}/moved`); // the rotation's new path cannot be created
  master.signal("SIGUSR1");
  await master.waitForLog(/cannot reopen log file .*arbiter\.log: .*still writing to the old one/);
});
