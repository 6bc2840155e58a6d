import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import type { Config } from "../config/types.ts";
import { captureLog, SELF, testConfig, waitForFile } from "./_testing.ts";
import { HookRunner } from "./runner.ts";
import type { Logger } from "@logtape/logtape";

function runner(config: Config, log: Logger, maxQueued?: number): HookRunner {
  return new HookRunner({ config, masterEnv: Deno.env.toObject(), self: SELF, log, maxQueued });
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-runner-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("HookRunner.fire: undefined when the hook is not configured", async () => {
  await using capture = await captureLog();
  const hooks = runner(testConfig(), capture.log);
  strictEqual(hooks.fire("on_reload"), undefined);
  strictEqual(hooks.has("on_reload"), false);
  strictEqual(hooks.pending, 0);
  await hooks.idle();
  throws(() => runner(testConfig(), capture.log, -1), RangeError);
});

Deno.test("HookRunner: hooks of one name run one after another, in firing order", async () => {
  await using capture = await captureLog();
  await withTempDir(async (dir) => {
    const log = `${dir}/order.txt`;
    const script =
      'echo "start $ARBITER_WORKER_ID" >> "$1"; sleep 0.05; echo "end $ARBITER_WORKER_ID" >> "$1"';
    const hooks = runner(testConfig({ post_exit: ["sh", "-c", script, "hook", log] }), capture.log);
    const results = [0, 1, 2, 3, 4].map((id) => hooks.fire("post_exit", { workerId: id })!);
    strictEqual(hooks.pending, 5);
    await hooks.idle();
    strictEqual(hooks.pending, 0);
    ok((await Promise.all(results)).every((r) => r.ok));
    const expected = [0, 1, 2, 3, 4].flatMap((id) => [`start ${id}`, `end ${id}`]);
    deepStrictEqual((await Deno.readTextFile(log)).trim().split("\n"), expected);
  });
});

Deno.test("HookRunner: a hanging hook is killed at hook_timeout while other hooks still run", async () => {
  await using capture = await captureLog();
  await withTempDir(async (dir) => {
    const config = testConfig({
      hook_timeout: 2,
      on_reload: ["sleep", "60"],
      when_ready: ["sh", "-c", 'echo "$ARBITER_GENERATION" > "$1"', "hook", `${dir}/ready`],
    });
    const hooks = runner(config, capture.log);
    const started = performance.now();
    let hungDone = false;
    const hung = hooks.fire("on_reload", { generation: 2 })!.then((r) => {
      hungDone = true;
      return r;
    });
    // Another hook, fired after the hanging one, finishes while it still hangs.
    const ready = await hooks.fire("when_ready", { generation: 2 })!;
    strictEqual(ready.ok, true);
    strictEqual(hungDone, false);
    strictEqual((await Deno.readTextFile(`${dir}/ready`)).trim(), "2");
    const result = await hung;
    const elapsed = performance.now() - started;
    strictEqual(result.timedOut, true);
    strictEqual(result.ok, false);
    strictEqual(result.signal, "SIGTERM");
    ok(elapsed >= 2000 && elapsed < 6000, `took ${elapsed} ms`);
    await hooks.idle();
  });
});

Deno.test("HookRunner.update: later firings use the new config; fire can take a config", async () => {
  await using capture = await captureLog();
  await withTempDir(async (dir) => {
    const hook = (tag: string) => ["sh", "-c", `echo ${tag} >> "$1"`, "hook", `${dir}/out`];
    const first = testConfig({ on_reload: hook("first") });
    const hooks = runner(first, capture.log);
    await hooks.fire("on_reload");
    await hooks.fire("on_reload", {}, { config: testConfig({ on_reload: hook("given") }) });
    hooks.update(testConfig({ on_reload: hook("second"), env: { HOOK_X: "x" } }));
    await hooks.fire("on_reload");
    hooks.update(testConfig());
    strictEqual(hooks.fire("on_reload"), undefined);
    deepStrictEqual((await Deno.readTextFile(`${dir}/out`)).trim().split("\n"), [
      "first",
      "given",
      "second",
    ]);
  });
});

Deno.test("HookRunner: the config's env and chdir reach the hook; event defaults to the name", async () => {
  await using capture = await captureLog();
  await withTempDir(async (dir) => {
    const config = testConfig({
      chdir: dir,
      env: { HOOK_FROM_CONFIG: "yes" },
      nworkers_changed: [
        "sh",
        "-c",
        'echo "$HOOK_FROM_CONFIG $ARBITER_EVENT $ARBITER_MASTER_PID $ARBITER_OLD_WORKERS>$ARBITER_NEW_WORKERS $(pwd)" > out',
      ],
    });
    const hooks = runner(config, capture.log);
    const result = await hooks.fire("nworkers_changed", { oldWorkers: 2, newWorkers: 3 })!;
    strictEqual(result.ok, true);
    strictEqual(
      (await Deno.readTextFile(`${dir}/out`)).trim(),
      `yes nworkers_changed ${Deno.pid} 2>3 ${await Deno.realPath(dir)}`,
    );
  });
});

Deno.test("HookRunner: firings beyond maxQueued are skipped, not queued", async () => {
  await using capture = await captureLog();
  await withTempDir(async (dir) => {
    // The first run waits for a file the test writes once everything is fired.
    const gate = `${dir}/gate`;
    const config = testConfig({
      post_exit: [
        "sh",
        "-c",
        'touch "$1.started"; while [ ! -e "$1" ]; do sleep 0.02; done',
        "hook",
        gate,
      ],
    });
    const hooks = runner(config, capture.log, 1);
    const running = hooks.fire("post_exit")!;
    const queued = hooks.fire("post_exit")!;
    const skipped = await hooks.fire("post_exit")!;
    strictEqual(skipped.ok, false);
    strictEqual(skipped.output, "skipped: 2 post_exit hooks are already running or waiting");
    ok(capture.lines().some((l) => l.includes("skipped: 2 post_exit hooks")));
    await waitForFile(`${gate}.started`, () => true);
    await Deno.writeTextFile(gate, "");
    strictEqual((await running).ok, true);
    strictEqual((await queued).ok, true);
    await hooks.idle();
    // Once the lane is empty, firing works again.
    strictEqual((await hooks.fire("post_exit")!).ok, true);
  });
});
