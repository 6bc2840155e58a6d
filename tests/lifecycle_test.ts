// Worker lifecycle, pidfile and exit codes, bad input (docs/contract.md:
// "Worker lifecycle", "Files and exit codes", "Command line", "Configuration")
// and logging, against the real master.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, httpGetJson, isZombie, readStat, startArbiter, waitFor } from "./_harness.ts";
import { PY_WORKER, startServing, tempDir } from "./_workers.ts";

Deno.test("a SIGKILLed worker is replaced promptly in its slot and the kill is logged", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 2 });
  const victim = await httpGetJson<{ pid: number; worker_id: number }>(
    `http://127.0.0.1:${port}/`,
  );
  const at = master.logOffset();
  Deno.kill(victim.pid, "SIGKILL");
  await master.waitForEvent(
    "worker.exited",
    new RegExp(`pid ${victim.pid}\\) was killed by SIGKILL`),
    { after: at },
  );
  const started = await master.waitForEvent(
    "worker.spawned",
    new RegExp(`worker ${victim.worker_id} \\(pid (\\d+)\\)`),
    { after: at },
  );
  assert(Number(started[1]) !== victim.pid);
  await master.waitForChildren(2);
});

Deno.test("a worker exiting 0 on its own is replaced and logged at info", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 1 });
  const at = master.logOffset();
  await httpGetJson(`http://127.0.0.1:${port}/exit?code=0`).catch(() => {});
  await master.waitForEvent("worker.exited", /worker 0 .*on its own with code 0/, { after: at });
  await master.waitForEvent("worker.spawned", "worker 0 ", { after: at });
});

for (const code of [3, 4]) {
  Deno.test(`a worker exiting ${code} before it is ready halts the master with ${code}`, async () => {
    await using dir = await tempDir();
    const pidfile = `${dir.path}/arbiter.pid`;
    await using master = startArbiter(
      // ready = notify: the worker is not ready until it says so, however slow the machine.
      [
        "-w",
        "2",
        "-b",
        `127.0.0.1:${freePort()}`,
        "-p",
        pidfile,
        "--ready",
        "notify",
        "--",
        ...PY_WORKER,
      ],
      { env: { EXIT_AT_BOOT: String(code) } },
    );
    assertEquals((await master.waitExit()).code, code);
    assert(master.stderr().includes("[master.halting]"), master.stderr());
    await assertGone(pidfile);
  });
}

async function assertGone(path: string): Promise<void> {
  try {
    await Deno.lstat(path);
  } catch {
    return;
  }
  throw new Error(`${path} still exists`);
}

Deno.test("a command that cannot be executed halts with 3 and names the command", async () => {
  await using dir = await tempDir();
  const script = `${dir.path}/not-executable.sh`;
  await Deno.writeTextFile(script, "#!/bin/sh\necho hi\n"); // mode 0644: no x bit
  for (const command of ["no-such-program-anywhere", script]) {
    await using master = startArbiter(["-b", `127.0.0.1:${freePort()}`, "--", command]);
    assertEquals((await master.waitExit()).code, 3);
    assert(master.stderr().includes(`cannot execute "${command}"`), master.stderr());
  }
});

Deno.test("a slot that keeps dying at boot backs off; the master stays up", async () => {
  const port = freePort();
  await using master = startArbiter(
    ["-w", "1", "-b", `127.0.0.1:${port}`, "--ready", "notify", "--", ...PY_WORKER],
    { env: { EXIT_AT_BOOT: "1" } },
  );
  const first = await master.waitForEvent("worker.boot_failed", /worker 0 .* 1 time\(s\)/);
  const t0 = performance.now();
  await master.waitForEvent("worker.boot_failed", /worker 0 .* 5 time\(s\)/, {
    timeoutMs: 20_000,
  });
  // Four back-offs passed between: 0.1 + 0.2 + 0.4 + 0.8 s at the least.
  assert(performance.now() - t0 >= 1400, `only ${performance.now() - t0} ms`);
  const starts = master.stderr().slice(first.index).match(/\[worker\.spawned\]/g) ?? [];
  assert(starts.length <= 5, `${starts.length} spawns`);
  assert(master.status !== undefined && readStat(master.pid)?.state !== "Z");
});

Deno.test("no zombies: every exited worker is reaped", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 3 });
  for (let round = 0; round < 3; round++) {
    const workers = await master.waitForChildren(3);
    for (const pid of workers) Deno.kill(pid, "SIGKILL");
    await waitFor(() => workers.every((pid) => readStat(pid) === undefined), {
      message: "killed workers to be reaped (no zombie left)",
    });
  }
  await master.waitForChildren(3);
  const zombies = [...Deno.readDirSync("/proc")]
    .map((e) => Number(e.name))
    .filter((pid) => pid > 0 && readStat(pid)?.ppid === master.pid && isZombie(pid));
  assertEquals(zombies, []);
});

Deno.test("pidfile: written as '<pid>\\n', removed on a clean exit", async () => {
  await using dir = await tempDir();
  const pidfile = `${dir.path}/arbiter.pid`;
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 1, args: ["-p", pidfile] });
  assertEquals(await Deno.readTextFile(pidfile), `${master.pid}\n`);
  master.signal("SIGTERM");
  assertEquals((await master.waitExit()).code, 0);
  await assertGone(pidfile);
});

Deno.test("pidfile naming a live process: exit 1, nothing bound; a stale one is replaced", async () => {
  await using dir = await tempDir();
  const pidfile = `${dir.path}/arbiter.pid`;
  const port = freePort();
  await Deno.writeTextFile(pidfile, `${Deno.pid}\n`); // this test runner: alive, not the master
  {
    await using master = startArbiter([
      "-p",
      pidfile,
      "-b",
      `127.0.0.1:${port}`,
      "--",
      ...PY_WORKER,
    ]);
    assertEquals((await master.waitExit()).code, 1);
    assert(master.stderr().includes(`names process ${Deno.pid}`), master.stderr());
    assertEquals(await Deno.readTextFile(pidfile), `${Deno.pid}\n`, "left as it was");
    Deno.listen({ hostname: "127.0.0.1", port }).close(); // the port was never bound
  }
  await Deno.writeTextFile(pidfile, "4194999\n"); // above pid_max: certainly not running
  await using master = await startServing(PY_WORKER, { port, workers: 1, args: ["-p", pidfile] });
  assertEquals(await Deno.readTextFile(pidfile), `${master.pid}\n`);
});

Deno.test("pidfile: a symlink planted at the path is refused (exit 1), neither followed nor replaced", async () => {
  await using dir = await tempDir();
  const pidfile = `${dir.path}/arbiter.pid`;
  const victim = `${dir.path}/victim`;
  await Deno.writeTextFile(victim, "keep me");
  await Deno.symlink(victim, pidfile);
  const port = freePort();
  await using master = startArbiter(["-p", pidfile, "-b", `127.0.0.1:${port}`, "--", ...PY_WORKER]);
  assertEquals((await master.waitExit()).code, 1, master.stderr());
  assert(master.stderr().includes("is a symbolic link"), master.stderr());
  assertEquals(await Deno.readTextFile(victim), "keep me");
  assert((await Deno.lstat(pidfile)).isSymlink);
  Deno.listen({ hostname: "127.0.0.1", port }).close(); // the port was never bound
});

const BAD_INPUT: [string, string[], Record<string, string> | null, RegExp][] = [
  ["unknown key", [], { "app.toml": 'command = ["x"]\nworkrs = 2' }, /unknown key "workrs"/],
  ["wrong type", [], { "app.toml": 'command = ["x"]\nworkers = "two"' }, /workers: expected/],
  [
    "out of range",
    [],
    { "app.toml": 'command = ["x"]\nworkers = 0' },
    /workers: .*from 1 to 10000.*got 0/,
  ],
  ["unparsable TOML", [], { "app.toml": 'command = ["x"\nworkers = 2' }, /app\.toml:\d+:\d+/],
  ["bad bind", ["-b", "nonsense"], { "app.toml": 'command = ["x"]' }, /bind.*nonsense/],
  ["missing config file", ["-c", "nowhere.toml"], null, /nowhere\.toml/],
  ["unreadable config file (a directory)", ["-c", "."], null, /cannot read/],
  ["empty command array", [], { "app.toml": "command = []" }, /command/],
  ["no command at all", [], { "app.toml": "workers = 2" }, /no worker command/],
  ["unknown option", ["--wrkers", "2"], null, /--wrkers/],
  ["bad number option", ["-w", "0"], null, /--workers/],
];

for (const [name, args, files, message] of BAD_INPUT) {
  Deno.test(`bad input exits 2 before anything is bound or written: ${name}`, async () => {
    await using dir = await tempDir();
    for (const [file, text] of Object.entries(files ?? {})) {
      await Deno.writeTextFile(`${dir.path}/${file}`, text);
    }
    const configArgs = files ? ["-c", "app.toml"] : [];
    await using master = startArbiter(
      [...configArgs, "-p", "arbiter.pid", ...args, ...(files ? [] : ["--", "true"])],
      { cwd: dir.path },
    );
    assertEquals((await master.waitExit()).code, 2, master.stderr());
    const lines = master.stderr().trim().split("\n");
    assert(message.test(master.stderr()), master.stderr());
    assert(lines.length <= 3, `one clear message, got:\n${master.stderr()}`);
    await assertGone(`${dir.path}/arbiter.pid`);
  });
}

Deno.test("--help lists every option; --version prints the version", async () => {
  await using help = startArbiter(["--help"]);
  assertEquals((await help.waitExit()).code, 0);
  for (const option of ["--config", "--workers", "--bind", "--timeout", "--graceful-timeout"]) {
    assert(help.stdout().includes(option), `--help lacks ${option}`);
  }
  await using version = startArbiter(["-V"]);
  assertEquals((await version.waitExit()).code, 0);
  assert(/^arbiter \d+\.\d+\.\d+\n/.test(version.stdout()), version.stdout());
});

Deno.test("--check-config prints the effective config and exits 0", async () => {
  await using check = startArbiter(["--check-config", "-w", "3", "--", "python3", "-V"]);
  assertEquals((await check.waitExit()).code, 0);
  assert(check.stdout().includes("workers = 3"), check.stdout());
});

Deno.test("JSON log format: one JSON object per line with time, level, event, pid, msg", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, {
    port,
    workers: 1,
    args: ["--log-format", "json"],
  });
  master.signal("SIGTERM");
  await master.waitExit();
  const lines = master.stderr().trim().split("\n").filter((l) => l.startsWith("{"));
  assert(lines.length >= 4);
  for (const line of lines) {
    const record = JSON.parse(line);
    assert(record.time && record.level && record.event && record.msg, line);
    assertEquals(record.pid, master.pid);
    if (String(record.event).startsWith("worker.")) {
      assertEquals(Object.keys(record.worker).sort(), ["generation", "id", "pid"], line);
    }
  }
});
