// The signal table (docs/contract.md, "Signals") against the real master with real workers.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  freePort,
  httpGetJson,
  httpRequest,
  isAlive,
  LoadGenerator,
  startArbiter,
  waitFor,
} from "./_harness.ts";
import { DENO_WORKER, generationReady, PY_WORKER, startServing, tempDir } from "./_workers.ts";

function configText(port: number, extra = ""): string {
  return [
    `command = ${JSON.stringify(PY_WORKER)}`,
    `workers = 2`,
    `bind = "127.0.0.1:${port}"`,
    `graceful_timeout = 10`,
    extra,
  ].join("\n");
}

Deno.test("HUP under steady load: new generation, zero failed requests", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(config, configText(port));
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const before = await master.waitForChildren(2);
  const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { concurrency: 4 });
  for (const generation of [2, 3, 4]) {
    master.signal("SIGHUP");
    await master.waitForLog(generationReady(generation));
  }
  await waitFor(() => master.children().every((pid) => !before.includes(pid)), {
    message: "the first generation to be gone",
  });
  // Proof that the load really flowed (a loaded machine may be slow, never failing).
  await waitFor(() => load.snapshot().ok > 50 || load.snapshot().failed > 0, {
    message: "50 requests through the new generation",
  });
  const result = await load.stop();
  assertEquals(result.failed, 0, result.errors.join("\n"));
});

Deno.test("HUP with a broken config: logged, the running workers are kept", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(config, configText(port));
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const before = (await master.waitForChildren(2)).sort();
  await Deno.writeTextFile(
    config,
    configText(port).replace("workers = 2", "workers = 0") + "bogus = 1",
  );
  const at = master.logOffset();
  master.signal("SIGHUP");
  const refused = await master.waitForEvent("reload.refused", /.*/, { after: at });
  assert(refused[0].includes("bogus") && refused[0].includes("workers"), refused[0]);
  assertEquals(master.children().sort(), before);
  assertEquals((await httpRequest(`http://127.0.0.1:${port}/`)).status, 200);
  // A fixed config reloads fine afterwards.
  await Deno.writeTextFile(config, configText(port, "workers = 3").replace("workers = 2\n", ""));
  master.signal("SIGHUP");
  await master.waitForLog(generationReady(2));
  await master.waitForChildren(3);
});

Deno.test("TERM lets an in-flight request finish, then the master exits 0", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 1 });
  const slow = httpRequest(`http://127.0.0.1:${port}/slow?ms=1500`);
  await master.waitForLog(/slow start/, { stream: "stdout" });
  master.signal("SIGTERM");
  const answer = await slow;
  assertEquals(answer.status, 200);
  assertEquals(answer.text, "slow done");
  assertEquals((await master.waitExit()).code, 0);
});

Deno.test("a worker that ignores TERM is killed at graceful_timeout", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, {
    port,
    workers: 1,
    args: ["--graceful-timeout", "1"],
    env: { IGNORE_TERM: "1" },
  });
  const [worker] = await master.waitForChildren(1);
  const started = performance.now();
  master.signal("SIGTERM");
  const status = await master.waitExit(10_000);
  assertEquals(status.code, 0);
  assert(performance.now() - started >= 900, "not killed before graceful_timeout");
  assert(master.stderr().includes("[worker.killed]"), master.stderr());
  assert(!isAlive(worker));
});

Deno.test("INT is a quick stop: QUIT to workers, exit 0", async () => {
  const port = freePort();
  await using master = await startServing(DENO_WORKER, { port, workers: 2 });
  master.signal("SIGINT");
  assertEquals((await master.waitExit()).code, 0);
  assert(master.stderr().includes("stopping quickly"));
});

Deno.test("QUIT during a graceful stop turns it into a quick one", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, {
    port,
    workers: 1,
    args: ["--graceful-timeout", "60"],
    env: { IGNORE_TERM: "1", IGNORE_QUIT: "1" },
  });
  master.signal("SIGTERM");
  await master.waitForEvent("stop.started", "stopping gracefully");
  master.signal("SIGQUIT");
  // Quick grace is 1 s, not the 60 s of graceful_timeout.
  assertEquals((await master.waitExit(10_000)).code, 0);
  assert(master.stderr().includes("[stop.quickened]"));
});

Deno.test("TTIN adds a worker, TTOU retires the oldest, never below one", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 2 });
  const initial = await master.waitForChildren(2);
  master.signal("SIGTTIN");
  const three = await master.waitForChildren(3);
  const oldest = Math.min(...initial); // pids grow here: the lower one started first
  master.signal("SIGTTOU");
  await waitFor(() => !isAlive(oldest) && master.children().length === 2, {
    message: "the oldest worker to be retired",
  });
  master.signal("SIGTTOU");
  await master.waitForChildren(1);
  await master.waitForEvent("scale.changed", "2 -> 1");
  // A third TTOU changes nothing: one worker stays. (Wait for it to be handled:
  // the kernel delivers pending TTIN before TTOU, by signal number.)
  master.signal("SIGTTOU");
  await master.waitForEvent("scale.refused", "SIGTTOU");
  master.signal("SIGTTIN");
  await master.waitForEvent("scale.changed", "SIGTTIN: workers 1 -> 2");
  await master.waitForChildren(2);
  assert(three.length === 3);
});

Deno.test("USR1 reopens the log file and reaches every worker", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const log = `${dir.path}/arbiter.log`;
  await using master = startArbiter([
    "-w",
    "2",
    "-b",
    `127.0.0.1:${port}`,
    "--log-file",
    log,
    "--",
    ...PY_WORKER,
  ]);
  // USR1 goes to ready workers only: wait for the whole generation, and for
  // both workers to have installed their USR1 handler (ready = "spawn" is only
  // a settle delay; a loaded machine may not have run the handler set-up yet).
  await waitFor(async () =>
    (await Deno.readTextFile(log).catch(() => "")).includes("generation 1 is ready")
  );
  await master.waitForLog(/listening[^]*listening/, { stream: "stdout" });
  await Deno.rename(log, `${log}.1`);
  master.signal("SIGUSR1");
  await master.waitForLog(/got USR1[^]*got USR1/, { stream: "stdout" });
  master.signal("SIGTTIN");
  await waitFor(async () => (await Deno.readTextFile(log).catch(() => "")).includes("SIGTTIN"), {
    message: "new lines in a new file at the old path",
  });
  assert(!(await Deno.readTextFile(`${log}.1`)).includes("SIGTTIN"));
});

Deno.test("WINCH without a controlling terminal stops the workers and keeps the master", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 2 });
  const workers = await master.waitForChildren(2);
  master.signal("SIGWINCH");
  await waitFor(() => workers.every((pid) => !isAlive(pid)) && master.children().length === 0, {
    message: "the workers to stop",
  });
  assert(isAlive(master.pid), "the master stays");
  master.signal("SIGHUP"); // brings them back
  await master.waitForLog(generationReady(2));
  assertEquals((await httpGetJson<{ lang: string }>(`http://127.0.0.1:${port}/`)).lang, "python");
});

Deno.test("TERM drains a Deno worker holding a connection that never sent a request", async () => {
  const port = freePort();
  await using master = await startServing(DENO_WORKER, {
    port,
    workers: 1,
    args: ["--graceful-timeout", "30"],
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port }); // a pooled, unused connection
  try {
    // Like a real client pool: it closes its end once the server says EOF.
    const eof = conn.read(new Uint8Array(1)).then(() => conn.close(), () => {});
    master.signal("SIGTERM");
    await eof;
    assertEquals((await master.waitExit(10_000)).code, 0);
    assert(!master.stderr().includes("[worker.killed]"), "drained, not killed at graceful_timeout");
  } finally {
    try {
      conn.close();
    } catch { /* closed at EOF */ }
  }
});
