// Operating a real master: `arbiter ctl` over the control socket,
// /livez /readyz /metrics, prefixed worker output.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
// deno-lint-ignore no-import-prefix -- a test-only parser, to check our output against a real one
import parsePrometheus from "npm:parse-prometheus-text-format@1.1.1";
import { freePort, httpGetJson, httpRequest, runCtl, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

const ctl = (...args: string[]) => runCtl(args);

interface Status {
  master: { pid: number; generation: number; workers_desired: number; config_file: string };
  workers: { id: number; pid: number; generation: number; state: string }[];
}

Deno.test("arbiter ctl: status, scale, reload, stop end to end over a 0600 socket", async () => {
  await using dir = await tempDir();
  const socket = `${dir.path}/ctl.sock`;
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${port}"\n` +
      `control_socket = "ctl.sock"\n`,
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  assertEquals(Deno.statSync(socket).mode! & 0o777, 0o600);

  const json = await ctl("--socket", socket, "status", "--json");
  assertEquals(json.code, 0, json.stderr);
  const status: Status = JSON.parse(json.stdout);
  assertEquals(status.master.pid, master.pid);
  assertEquals(status.master.config_file, config);
  assertEquals(status.workers.map((w) => [w.id, w.state]), [[0, "ready"], [1, "ready"]]);

  // --config finds the socket through the config file.
  const table = await ctl("--config", config, "status");
  assertEquals(table.code, 0, table.stderr);
  assert(table.stdout.includes(String(status.workers[0].pid)), table.stdout);

  assertEquals((await ctl("-s", socket, "scale", "3")).code, 0);
  await master.waitForChildren(3);
  assertEquals((await ctl("-s", socket, "reload")).code, 0);
  await master.waitForLog(generationReady(2));
  const after: Status = JSON.parse((await ctl("-s", socket, "status", "--json")).stdout);
  assertEquals(after.master.generation, 2);
  assertEquals(after.master.workers_desired, 2, "a reload applies the file's workers again");

  const bad = await httpRequest("http://localhost/v1/scale", {
    unixSocket: socket,
    method: "POST",
  });
  assert(bad.status >= 400 && bad.status < 500, `status ${bad.status}`);
  assert(typeof bad.json<{ error: string }>().error === "string");

  const upgraded = await ctl("-s", socket, "upgrade");
  assertEquals(upgraded.code, 0, upgraded.stderr);
  await master.waitForEvent("upgrade.done");
  await master.waitForLog(generationReady(3));
  // The new image serves the control socket again.
  await waitFor(async () => (await ctl("-s", socket, "status")).code === 0, {
    message: "ctl to answer after the upgrade",
  });

  assertEquals((await ctl("-s", socket, "quick-stop")).code, 0);
  assertEquals((await master.waitExit()).code, 0);
  assert(master.stderr().includes("control request: stopping quickly"));
  await waitFor(async () => !(await Deno.lstat(socket).then(() => true, () => false)), {
    message: "the control socket to be removed",
  });
  const gone = await ctl("-s", socket, "status");
  assertEquals(gone.code, 1);
  assert(gone.stderr.includes(socket), gone.stderr);
});

Deno.test("metrics: /livez, /readyz flips during a stop, /metrics parses and moves", async () => {
  const port = freePort();
  const metricsPort = freePort();
  // metrics_bind has no command-line option: it comes from the file.
  await using dir = await tempDir();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${port}"\n` +
      `metrics_bind = "127.0.0.1:${metricsPort}"\ngraceful_timeout = 5\n`,
  );
  await using m = startArbiter(["--config", config], { env: { IGNORE_TERM: "1" } });
  await m.waitForLog(generationReady(1));
  const base = `http://127.0.0.1:${metricsPort}`;
  assertEquals((await httpRequest(`${base}/livez`)).status, 200);
  assertEquals((await httpRequest(`${base}/readyz`)).status, 200);

  const scrape = async () => {
    const families = parsePrometheus((await httpRequest(`${base}/metrics`)).text) as {
      name: string;
      type: string;
      help: string;
      metrics: { value: string; labels?: Record<string, string> }[];
    }[];
    return new Map(families.map((f) => [f.name, f]));
  };
  const before = await scrape();
  for (const family of before.values()) assert(family.help && family.type, family.name);
  const value = (
    m: Map<string, { metrics: { value: string; labels?: Record<string, string> }[] }>,
    name: string,
    label?: [string, string],
  ) => Number(m.get(name)!.metrics.find((x) => !label || x.labels?.[label[0]] === label[1])!.value);
  assertEquals(value(before, "arbiter_workers", ["state", "ready"]), 2);
  const restarts = value(before, "arbiter_worker_restarts_total");

  const info = await httpGetJson<{ pid: number }>(`http://127.0.0.1:${port}/`);
  Deno.kill(info.pid, "SIGKILL");
  await waitFor(
    async () => value(await scrape(), "arbiter_worker_restarts_total") === restarts + 1,
    {
      message: "restarts to count the killed worker",
    },
  );
  assertEquals(value(await scrape(), "arbiter_worker_exits_total", ["reason", "sigkill"]), 1);

  // Workers ignore TERM here, so the stop takes graceful_timeout: /readyz is 503 meanwhile.
  m.signal("SIGTERM");
  await waitFor(async () => (await httpRequest(`${base}/readyz`)).status === 503, {
    message: "/readyz to turn 503 during the stop",
  });
  assertEquals((await httpRequest(`${base}/livez`)).status, 200, "still alive while stopping");
  assertEquals((await m.waitExit(15_000)).code, 0);
});

Deno.test("worker_output = prefix: 100,000 lines arrive whole, each with its worker id", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/app.toml`;
  const script = [
    "import os, sys, time",
    "w = os.environ['ARBITER_WORKER_ID']",
    "out = sys.stdout",
    "for i in range(100000): out.write(f'line {i} of worker {w} ' + 'x' * 40 + '\\n')",
    "out.flush()",
    "time.sleep(60)",
  ].join("\n");
  await Deno.writeTextFile(
    config,
    `command = ["python3", "-c", ${JSON.stringify(script)}]\nworkers = 2\n` +
      `bind = "127.0.0.1:${freePort()}"\nworker_output = "prefix"\n`,
  );
  await using master = startArbiter(["--config", config]);
  await waitFor(
    () => (master.stdout().match(/line 99999 of worker/g) ?? []).length === 2,
    { timeoutMs: 30_000, message: "every line of both workers" },
  );
  const lines = master.stdout().split("\n").filter((l) => l.includes(" of worker "));
  assertEquals(lines.length, 200_000);
  const whole = /^\[worker ([01])\] line (\d+) of worker \1 x{40}$/;
  const next = [0, 0];
  for (const line of lines) {
    const m = whole.exec(line);
    assert(m, `a split or mixed line: ${line.slice(0, 120)}`);
    assertEquals(Number(m[2]), next[Number(m[1])]++, "in order per worker");
  }
});
