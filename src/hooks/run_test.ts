import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { getsockname, setCloexec } from "../sys/libc.ts";
import { isAlive, waitFor } from "../../tests/_harness.ts";
import { captureLog, SELF, testConfig } from "./_testing.ts";
import { checkHooks, type HookContext, hookEnv, runHook, type RunHookOptions } from "./run.ts";
import type { Logger } from "@logtape/logtape";

const FULL_CONTEXT: HookContext = {
  event: "post_exit",
  masterPid: Deno.pid,
  workerId: 2,
  workerPid: 4242,
  exitCode: 3,
  exitSignal: "SIGKILL",
  oldWorkers: 4,
  newWorkers: 5,
  generation: 7,
};

function options(log: Logger, extra: Partial<RunHookOptions> = {}): RunHookOptions {
  return { timeoutMs: 15_000, masterEnv: Deno.env.toObject(), self: SELF, log, ...extra };
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

Deno.test("hookEnv: only the fields that are set", () => {
  deepStrictEqual(hookEnv({ event: "on_exit", masterPid: 10, exitCode: 0 }), {
    ARBITER_EVENT: "on_exit",
    ARBITER_MASTER_PID: "10",
    ARBITER_EXIT_CODE: "0",
  });
});

Deno.test("runHook: the hook sees every ARBITER_* variable, the master env, not its private vars", async () => {
  await using capture = await captureLog();
  const dir = await Deno.makeTempDir({ prefix: "arbiter-hook-" });
  try {
    const out = `${dir}/env.txt`;
    const masterEnv = {
      ...Deno.env.toObject(),
      HOOK_TEST_VALUE: "kept",
      LISTEN_FDS: "1",
      NOTIFY_SOCKET: "/tmp/nope",
      ARBITER_WORKER_ID: "stale",
    };
    const result = await runHook(
      "post_exit",
      ["sh", "-c", 'env > "$1"; pwd >> "$1.pwd"', "hook", out],
      FULL_CONTEXT,
      options(capture.log, { masterEnv, cwd: dir }),
    );
    deepStrictEqual(result, { ok: true, code: 0, signal: null, timedOut: false, output: "" });
    const env = parseEnv(await Deno.readTextFile(out));
    ok(Object.keys(env).every((k) => k !== "LISTEN_FDS" && k !== "NOTIFY_SOCKET"));
    ok(!("ARBITER_EXEC_SPEC" in env), "the shim's own variable does not reach the hook");
    deepStrictEqual(
      Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("ARBITER_")).sort()),
      {
        ARBITER_EVENT: "post_exit",
        ARBITER_EXIT_CODE: "3",
        ARBITER_EXIT_SIGNAL: "SIGKILL",
        ARBITER_GENERATION: "7",
        ARBITER_MASTER_PID: String(Deno.pid),
        ARBITER_NEW_WORKERS: "5",
        ARBITER_OLD_WORKERS: "4",
        ARBITER_WORKER_ID: "2",
        ARBITER_WORKER_PID: "4242",
      },
    );
    strictEqual(env.HOOK_TEST_VALUE, "kept");
    strictEqual((await Deno.readTextFile(`${out}.pwd`)).trim(), await Deno.realPath(dir));

    // A context with fewer fields gives fewer variables.
    await runHook(
      "on_exit",
      ["sh", "-c", 'env > "$1"', "hook", out],
      { event: "on_exit", masterPid: Deno.pid },
      options(capture.log, { masterEnv, cwd: dir }),
    );
    const fewer = parseEnv(await Deno.readTextFile(out));
    deepStrictEqual(Object.keys(fewer).filter((k) => k.startsWith("ARBITER_")).sort(), [
      "ARBITER_EVENT",
      "ARBITER_MASTER_PID",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runHook: a hook exiting 1 gives ok:false, its code and output, each line logged", async () => {
  await using capture = await captureLog();
  const result = await runHook(
    "on_reload",
    ["sh", "-c", "echo out-line; echo err-line >&2; printf 'no newline'; exit 1"],
    { event: "on_reload", masterPid: Deno.pid },
    options(capture.log),
  );
  strictEqual(result.ok, false);
  strictEqual(result.code, 1);
  strictEqual(result.signal, null);
  strictEqual(result.timedOut, false);
  match(result.output, /out-line/);
  match(result.output, /err-line/);
  match(result.output, /no newline/); // stdout and stderr interleave as they arrive
  const lines = capture.lines();
  ok(lines.includes("hook on_reload: out-line"), lines.join("\n"));
  ok(lines.includes("hook on_reload: err-line"), lines.join("\n"));
  ok(lines.includes("hook on_reload: no newline"), lines.join("\n"));
  ok(lines.some((l) => /^hook on_reload failed: exit code 1/.test(l)), lines.join("\n"));
});

Deno.test("runHook: output keeps the last 4 KiB", async () => {
  await using capture = await captureLog();
  const result = await runHook(
    "when_ready",
    [
      "sh",
      "-c",
      "i=0; while [ $i -lt 500 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
    ],
    { event: "when_ready", masterPid: Deno.pid },
    options(capture.log),
  );
  strictEqual(result.ok, true);
  ok(new TextEncoder().encode(result.output).length <= 4096);
  ok(result.output.length > 4000);
  match(result.output, /line-499-x+\n$/);
  ok(!result.output.includes("line-0-"));
  strictEqual(capture.lines().filter((l) => l.startsWith("hook when_ready: line-")).length, 500);
});

Deno.test("runHook: a hook that does not exist gives ok:false and a clear message", async () => {
  await using capture = await captureLog();
  const result = await runHook(
    "pre_spawn",
    ["arbiter-no-such-hook-program"],
    { event: "pre_spawn", masterPid: Deno.pid },
    options(capture.log),
  );
  deepStrictEqual(result, {
    ok: false,
    code: null,
    signal: null,
    timedOut: false,
    output: 'cannot execute "arbiter-no-such-hook-program": not found in PATH',
  });
  ok(
    capture.lines().includes(
      'hook pre_spawn: cannot execute "arbiter-no-such-hook-program": not found in PATH',
    ),
  );

  const dir = await Deno.makeTempDir({ prefix: "arbiter-hook-" });
  try {
    await Deno.writeTextFile(`${dir}/script`, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
    const notExecutable = await runHook(
      "pre_spawn",
      ["./script"],
      { event: "pre_spawn", masterPid: Deno.pid },
      options(capture.log, { cwd: dir }),
    );
    strictEqual(notExecutable.ok, false);
    match(notExecutable.output, /cannot execute "\.\/script": .*script is not executable/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runHook: a hook past its limit is killed with its group (SIGTERM, then SIGKILL)", async () => {
  await using capture = await captureLog();
  // Ignores SIGTERM (and so does the sleep it starts), so only SIGKILL ends it;
  // prints the pid of its background sleep so we can check the group went too.
  const started = performance.now();
  const result = await runHook(
    "on_reload",
    ["sh", "-c", 'trap "" TERM; sleep 60 & echo "bg=$!"; wait; wait'],
    { event: "on_reload", masterPid: Deno.pid },
    options(capture.log, { timeoutMs: 800 }),
  );
  const elapsed = performance.now() - started;
  strictEqual(result.ok, false);
  strictEqual(result.timedOut, true);
  strictEqual(result.signal, "SIGKILL");
  strictEqual(result.code, null);
  ok(elapsed >= 1800 && elapsed < 6000, `took ${elapsed} ms`);
  const bg = Number(result.output.match(/bg=(\d+)/)?.[1]);
  ok(bg > 0, result.output);
  await waitFor(() => !isAlive(bg), { message: `background sleep ${bg} killed` });
  const lines = capture.lines();
  ok(lines.some((l) => /^hook on_reload still running after 0\.8 s/.test(l)), lines.join("\n"));
  ok(lines.some((l) => /^hook on_reload failed: timed out after 0\.8 s/.test(l)));
});

Deno.test("runHook: a hook that stops on SIGTERM is not SIGKILLed", async () => {
  await using capture = await captureLog();
  const result = await runHook(
    "on_exit",
    ["sleep", "60"],
    { event: "on_exit", masterPid: Deno.pid },
    options(capture.log, { timeoutMs: 500 }),
  );
  strictEqual(result.timedOut, true);
  strictEqual(result.signal, "SIGTERM");
  strictEqual(result.ok, false);
});

Deno.test("runHook: timeoutMs 0 means no limit", async () => {
  await using capture = await captureLog();
  const result = await runHook(
    "on_exit",
    ["sleep", "0.2"],
    { event: "on_exit", masterPid: Deno.pid },
    options(capture.log, { timeoutMs: 0 }),
  );
  deepStrictEqual(result, { ok: true, code: 0, signal: null, timedOut: false, output: "" });
});

Deno.test("runHook: a limit longer than one setTimeout holds does not kill the hook at once", async () => {
  await using capture = await captureLog();
  // hook_timeout = 3000000 (34.7 days): a plain setTimeout would fire after 1 ms.
  const result = await runHook(
    "on_starting",
    ["sleep", "0.3"],
    { event: "on_starting", masterPid: Deno.pid },
    options(capture.log, { timeoutMs: 3_000_000_000 }),
  );
  deepStrictEqual(result, { ok: true, code: 0, signal: null, timedOut: false, output: "" });
});

Deno.test("runHook: a background process holding the output does not keep the result", async () => {
  await using capture = await captureLog();
  const result = await runHook(
    "when_ready",
    ["sh", "-c", 'sleep 30 & echo "bg=$!"; exit 0'],
    { event: "when_ready", masterPid: Deno.pid },
    options(capture.log),
  );
  strictEqual(result.ok, true);
  const bg = Number(result.output.match(/bg=(\d+)/)?.[1]);
  ok(bg > 0);
  Deno.kill(bg, "SIGKILL"); // our test's own leftover; the hook's exit is what was asserted
});

/** The fd number and `socket:[inode]` link of a listener of this process. */
function findSocketFd(port: number): { fd: number; link: string } {
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    const fd = Number(entry.name);
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (!link.startsWith("socket:")) continue;
    try {
      const name = getsockname(fd);
      if (name.family === "inet" && name.port === port) return { fd, link };
    } catch { /* not a socket any more */ }
  }
  throw new Error(`no fd for port ${port}`);
}

Deno.test("runHook: a hook does not inherit an fd of the master without FD_CLOEXEC", async () => {
  await using capture = await captureLog();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { fd, link } = findSocketFd((listener.addr as Deno.NetAddr).port);
  setCloexec(fd, false);
  try {
    // Control: a plain child does inherit it, so the check below means something.
    const plain = await new Deno.Command("ls", {
      args: ["-l", "/proc/self/fd"],
      stdout: "piped",
      stderr: "null",
    }).output();
    ok(new TextDecoder().decode(plain.stdout).includes(link), "control: plain child inherits");

    const result = await runHook(
      "pre_spawn",
      ["ls", "-l", "/proc/self/fd"],
      { event: "pre_spawn", masterPid: Deno.pid },
      options(capture.log),
    );
    strictEqual(result.ok, true, result.output);
    match(result.output, /\b1 -> /); // it did list its fds
    ok(!result.output.includes(link), `the hook holds ${link}:\n${result.output}`);
    ok(!result.output.includes("socket:"), result.output);
  } finally {
    setCloexec(fd, true);
    listener.close();
  }
});

Deno.test("runHook: each hook runs in its own process group", async () => {
  await using capture = await captureLog();
  const result = await runHook(
    "when_ready",
    ["sh", "-c", "cut -d' ' -f1,5 /proc/$$/stat"],
    { event: "when_ready", masterPid: Deno.pid },
    options(capture.log),
  );
  const [pid, pgid] = result.output.trim().split(" ").map(Number);
  strictEqual(pid, pgid);
  ok(pgid !== Deno.pid);
});

Deno.test("checkHooks: every configured hook must be executable, named by its key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-hook-" });
  try {
    await Deno.writeTextFile(`${dir}/plain`, "#!/bin/sh\n", { mode: 0o644 });
    await Deno.writeTextFile(`${dir}/tool`, "#!/bin/sh\n", { mode: 0o755 });
    const config = testConfig({
      chdir: dir,
      env: { PATH: `${dir}:/usr/bin:/bin` },
      on_starting: ["sh", "-c", "true"],
      on_reload: ["arbiter-no-such-hook-program"],
      pre_spawn: ["./plain"],
      post_exit: ["tool", "--flag"], // found through the worker PATH
      on_exit: ["./missing"],
    });
    deepStrictEqual(checkHooks(config, { PATH: "/usr/bin:/bin" }, "/"), [
      'on_reload: cannot execute "arbiter-no-such-hook-program": not found in PATH',
      `pre_spawn: cannot execute "./plain": ${dir}/plain is not executable`,
      `on_exit: cannot execute "./missing": no such file (${dir}/missing)`,
    ]);
    deepStrictEqual(checkHooks(testConfig()), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
