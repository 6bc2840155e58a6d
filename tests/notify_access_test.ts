// A worker's notify socket accepts messages from that worker only
// (docs/contract.md, "Security"): another process of the same user that learns the path (here from
// /proc/<pid>/environ, as a sibling worker could) is dropped and counted, and
// the real worker's messages still work.
import { ok as assert } from "node:assert/strict";
import { cmdlineOf, freePort, isWorkerProgram, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

const PY_SEND = "import socket, sys\n" +
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n" +
  "for m in sys.argv[2:]: s.sendto(m.encode(), sys.argv[1])\n";

function envOf(pid: number): Record<string, string> {
  const raw = Deno.readTextFileSync(`/proc/${pid}/environ`);
  return Object.fromEntries(
    raw.split("\0").filter((kv) => kv.includes("=")).map((kv) => {
      const i = kv.indexOf("=");
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
}

Deno.test("a forged READY=1 / WATCHDOG=1 from outside the worker is dropped; the worker's own READY=1 counts", async () => {
  const port = freePort();
  const metricsPort = freePort();
  await using dir = await tempDir();
  // metrics_bind has no command-line option: it comes from the file.
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(config, `metrics_bind = "127.0.0.1:${metricsPort}"\n`);
  // The worker says READY=1 only after 4 s, so a forged one would show first.
  await using master = startArbiter(
    [
      "--config",
      config,
      "-w",
      "1",
      "-b",
      `127.0.0.1:${port}`,
      "--ready",
      "notify",
      "--log-level",
      "debug",
      "--",
      ...PY_WORKER,
    ],
    { env: { NOTIFY_READY: "1", BOOT_DELAY_MS: "4000" } },
  );
  // The worker's environment as the program sees it: the child may still be
  // on its way through an exec (a python3 that is a pyenv shim execs twice),
  // so wait for the Python worker itself.
  const target = await waitFor(() => {
    const [worker] = master.children().filter((pid) =>
      isWorkerProgram(pid) && cmdlineOf(pid).some((arg) => arg.endsWith("/py_worker.py"))
    );
    return worker === undefined ? undefined : envOf(worker).NOTIFY_SOCKET;
  }, { timeoutMs: 20_000, message: "the Python worker, with a NOTIFY_SOCKET" });
  const out = await new Deno.Command("python3", {
    args: ["-c", PY_SEND, target, "READY=1", "WATCHDOG=1", "STATUS=forged"],
    stdout: "null",
    stderr: "null",
  }).output();
  assert(
    out.success,
    "the forger can reach the socket (same user): only the sender check stops it",
  );
  await master.waitForEvent(
    "notify.ignored",
    /dropped \d+ message\(s\) from a process that is not pid \d+/,
  );
  assert(!generationReady(1).test(master.stderr()), "the forged READY=1 did not count");
  // ...and /metrics counts them (three messages, or more if a barrier was dropped too).
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const dropped = Number(/^arbiter_notify_dropped_total (\d+)$/m.exec(metrics)?.[1]);
  assert(dropped >= 3, metrics);
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
  master.signal("SIGTERM");
  await master.waitExit();
});
