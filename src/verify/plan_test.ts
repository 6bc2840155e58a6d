import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { parse } from "smol-toml";
import { loadConfig } from "../config/load.ts";
import { planRun, portsNeeded } from "./plan.ts";

const load = (toml: string) =>
  Deno.makeTempFile({ suffix: ".toml" }).then(async (file) => {
    await Deno.writeTextFile(file, toml);
    try {
      return await loadConfig({ configPath: file, overrides: {} }, {}, "/");
    } finally {
      await Deno.remove(file);
    }
  });

Deno.test("planRun keeps the worker and drops everything that reaches outside the run", async () => {
  const config = await load(`
    command = ["python3", "app.py"]
    workers = 16
    bind = ["0.0.0.0:80", "[::]:8443", "unix:/run/app.sock"]
    timeout = 20
    graceful_timeout = 7
    ready = "notify"
    env = { A = "1" }
    user = "nobody"
    pidfile = "/run/app.pid"
    control_socket = "/run/ctl.sock"
    metrics_bind = "0.0.0.0:9100"
    log_file = "/tmp/app.log"
    on_starting = ["true"]
  `);
  assertEquals(portsNeeded(config), 2);
  const plan = planRun(config, { tcpPorts: [4001, 4002], dir: "/tmp/v" }, "/srv");
  const toml = parse(plan.toml) as Record<string, unknown>;
  assertEquals(toml.bind, ["127.0.0.1:4001", "127.0.0.1:4002", "unix:/tmp/v/bind-2.sock"]);
  assertEquals(plan.target, { transport: "tcp", hostname: "127.0.0.1", port: 4001 });
  assertEquals([toml.workers, toml.timeout, toml.graceful_timeout, toml.ready], [
    4,
    3,
    7,
    "notify",
  ]);
  // The config file's directory: chdir's default.
  assertEquals([{ ...toml.env as object }, toml.user, toml.chdir], [
    { A: "1" },
    "nobody",
    config.chdir,
  ]);
  assertEquals([toml.log_format, toml.worker_output], ["json", "prefix"]);
  for (const key of ["pidfile", "control_socket", "metrics_bind", "log_file", "on_starting"]) {
    assertEquals(toml[key], undefined, key);
    ok(plan.dropped.includes(key), key);
  }
  ok(plan.notes.some((n) => n.includes("4 of the 16 workers")));
  ok(plan.notes.some((n) => n.includes("3 s instead of 20 s")));
});

Deno.test("planRun: no chdir means the config file's directory; timeout 0 stays off", async () => {
  const config = await load(`command = ["./app"]\ntimeout = 0\n`);
  const plan = planRun(config, { tcpPorts: [5000], dir: "/tmp/v" }, "/srv/app");
  const toml = parse(plan.toml) as Record<string, unknown>;
  const fileDir = Deno.realPathSync(Deno.env.get("TMPDIR") || "/tmp");
  assertEquals([toml.chdir, toml.timeout, plan.userTimeoutS], [fileDir, 0, 0]);
  assertEquals(plan.notes, []);
});
