// Lifecycle hooks and reload on file change against a real master.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, httpGetJson, isAlive, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

/** A hook that appends one JSON line with its ARBITER_* environment to `file`. */
function recorder(file: string): string[] {
  const code = [
    "import json, os, sys",
    "env = {k: v for k, v in os.environ.items() if k.startswith('ARBITER_')}",
    "open(sys.argv[1], 'a').write(json.dumps(env) + '\\n')",
  ].join("; ");
  return ["python3", "-c", code, file];
}

async function records(file: string): Promise<Record<string, string>[]> {
  const text = await Deno.readTextFile(file).catch(() => "");
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

function toml(values: Record<string, unknown>): string {
  return Object.entries(values).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n";
}

Deno.test("every hook fires once, in order, with its context in the environment", async () => {
  await using dir = await tempDir();
  const log = `${dir.path}/hooks.jsonl`;
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  const hook = recorder(log);
  await Deno.writeTextFile(
    config,
    toml({
      command: PY_WORKER,
      workers: 1,
      bind: `127.0.0.1:${port}`,
      on_starting: hook,
      when_ready: hook,
      on_reload: hook,
      pre_spawn: hook,
      post_exit: hook,
      nworkers_changed: hook,
      on_exit: hook,
    }),
  );
  const master = startArbiter(["--config", config]);
  let info = { pid: 0 };
  try {
    await master.waitForLog(generationReady(1));
    await waitFor(async () => (await records(log)).some((r) => r.ARBITER_EVENT === "when_ready"));
    master.signal("SIGTTIN");
    await waitFor(async () =>
      (await records(log)).some((r) => r.ARBITER_EVENT === "nworkers_changed")
    );
    info = await httpGetJson<{ pid: number }>(`http://127.0.0.1:${port}/`);
    Deno.kill(info.pid, "SIGKILL");
    await waitFor(async () => (await records(log)).some((r) => r.ARBITER_EVENT === "post_exit"));
    master.signal("SIGTERM");
    assertEquals((await master.waitExit()).code, 0);
  } finally {
    await master[Symbol.asyncDispose]();
  }
  const all = await records(log);
  const events = all.map((r) => r.ARBITER_EVENT);
  assertEquals(events[0], "on_starting");
  assertEquals(events.at(-1), "on_exit");
  assertEquals(events.filter((e) => e === "on_starting").length, 1);
  assertEquals(events.filter((e) => e === "on_exit").length, 1);
  assert(events.indexOf("pre_spawn") < events.indexOf("when_ready"), events.join(","));
  for (const r of all) assertEquals(r.ARBITER_MASTER_PID, String(master.pid));
  const changed = all.find((r) => r.ARBITER_EVENT === "nworkers_changed")!;
  assertEquals([changed.ARBITER_OLD_WORKERS, changed.ARBITER_NEW_WORKERS], ["1", "2"]);
  const killed = all.find((r) =>
    r.ARBITER_EVENT === "post_exit" && r.ARBITER_WORKER_PID === String(info.pid)
  )!;
  assertEquals(killed.ARBITER_EXIT_SIGNAL, "SIGKILL");
  assert(killed.ARBITER_WORKER_ID !== undefined);
  const spawn = all.find((r) => r.ARBITER_EVENT === "pre_spawn")!;
  assertEquals(spawn.ARBITER_WORKER_ID, "0");
  assertEquals(all.find((r) => r.ARBITER_EVENT === "on_exit")!.ARBITER_EXIT_CODE, "0");
});

Deno.test("a failing on_starting aborts the start with exit 1 and its output in the log", async () => {
  const port = freePort();
  await using dir = await tempDir();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    toml({
      command: PY_WORKER,
      bind: `127.0.0.1:${port}`,
      on_starting: ["sh", "-c", "echo migrations failed; exit 1"],
    }),
  );
  await using master = startArbiter(["--config", config]);
  assertEquals((await master.waitExit()).code, 1);
  assert(master.stderr().includes("hook on_starting: migrations failed"), master.stderr());
  assert(!master.stderr().includes("listening at"), "nothing was bound");
});

Deno.test("a failing on_reload keeps the old workers", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  const base = { command: PY_WORKER, workers: 2, bind: `127.0.0.1:${port}` };
  await Deno.writeTextFile(config, toml(base));
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const before = (await master.waitForChildren(2)).sort();
  await Deno.writeTextFile(config, toml({ ...base, on_reload: ["false"] }));
  master.signal("SIGHUP");
  await master.waitForEvent("reload.refused", "the on_reload hook failed");
  assertEquals(master.children().sort(), before);
});

Deno.test("a hanging hook is killed at hook_timeout; a SIGKILLed worker is still replaced on time", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    toml({
      command: PY_WORKER,
      workers: 1,
      bind: `127.0.0.1:${port}`,
      post_exit: ["sleep", "60"],
      hook_timeout: 6,
    }),
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const first = await httpGetJson<{ pid: number }>(`http://127.0.0.1:${port}/`);
  const at = master.logOffset();
  Deno.kill(first.pid, "SIGKILL");
  // The replacement does not wait for the post_exit hook, which hangs.
  const started = performance.now();
  await master.waitForEvent("worker.spawned", "worker 0 ", { after: at });
  // Had it waited for the hook, it would have taken hook_timeout (6 s).
  assert(performance.now() - started < 4000, "replaced promptly despite the hung hook");
  await master.waitForEvent("hook.failed", /post_exit .*(time|killed)/i, {
    after: at,
    timeoutMs: 15_000,
  });
});

Deno.test("reload on change: one edit replaces every worker once; a burst of ten gives one reload", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const app = `${dir.path}/app.py`;
  await Deno.writeTextFile(app, "# v1\n");
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    toml({
      command: PY_WORKER,
      workers: 2,
      bind: `127.0.0.1:${port}`,
      reload: true,
      reload_paths: [dir.path],
      reload_extensions: ["py"],
    }),
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const first = await master.waitForChildren(2);
  await Deno.writeTextFile(app, "# v2\n");
  await master.waitForLog(generationReady(2));
  await waitFor(() => first.every((pid) => !isAlive(pid)), { message: "old workers replaced" });
  const at = master.logOffset();
  for (let i = 0; i < 10; i++) await Deno.writeTextFile(app, `# v${i + 3}\n`);
  await master.waitForLog(generationReady(3), { after: at });
  // Quiet afterwards: the burst gave exactly one reload.
  const settled = performance.now() + 1500;
  await waitFor(() => performance.now() > settled, { intervalMs: 100 });
  assertEquals((master.stderr().slice(at).match(/\[reload\.started\]/g) ?? []).length, 1);
});

Deno.test("--check-config validates hook programs and reload paths, naming the key", async () => {
  await using dir = await tempDir();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    toml({
      command: PY_WORKER,
      on_reload: ["no-such-hook-program"],
      reload: true,
      reload_paths: [`${dir.path}/missing`],
    }),
  );
  await using check = startArbiter(["--check-config", "--config", config]);
  assertEquals((await check.waitExit()).code, 2);
  assert(
    check.stderr().includes(`on_reload: cannot execute "no-such-hook-program"`),
    check.stderr(),
  );
  assert(check.stderr().includes("reload_paths"), check.stderr());
});

Deno.test("worker_timeout fires with the hung worker's id and pid", async () => {
  await using dir = await tempDir();
  const log = `${dir.path}/hooks.jsonl`;
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    toml({
      command: PY_WORKER,
      workers: 1,
      bind: `127.0.0.1:${port}`,
      timeout: 2,
      worker_timeout: recorder(log),
    }) + `[env]\nWATCHDOG_PING = "1"\n`,
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const hung = await httpGetJson<{ pid: number }>(`http://127.0.0.1:${port}/`);
  // The watchdog is armed from the first ping on: stop pinging only after it.
  await master.waitForLog(/first watchdog ping/, { stream: "stdout" });
  await httpGetJson(`http://127.0.0.1:${port}/stop-watchdog`).catch(() => {});
  const record = await waitFor(async () =>
    (await records(log)).find((r) => r.ARBITER_EVENT === "worker_timeout")
  );
  assertEquals(record.ARBITER_WORKER_PID, String(hung.pid));
  assertEquals(record.ARBITER_WORKER_ID, "0");
});
