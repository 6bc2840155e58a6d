// Bad numbers, early checks and planted pidfiles (docs/contract.md,
// "Configuration", "Files and exit codes", "Security"): each is refused by the
// real master before anything is bound or written, with the exit code of
// docs/contract.md, "Files and exit codes" and a message naming the key, and
// `--check-config` finds the same problems.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, startArbiter } from "./_harness.ts";
import { PY_WORKER, startServing, tempDir } from "./_workers.ts";

/** A uid no test machine has in /etc/passwd. */
const UNLISTED_UID = 54321;

interface Refusal {
  /** The config file's lines after `command` and `bind`. */
  config?: string[];
  /** Extra arguments after `-c app.toml`. */
  args?: string[];
  code: number;
  message: RegExp;
  /** Set up the directory first (plant a pidfile). */
  plant?: (dir: string) => Promise<void>;
  /** The pidfile is planted, so it must be left as it was rather than absent. */
  keepsPidfile?: boolean;
}

async function mkfifo(path: string): Promise<void> {
  const { success } = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert(success, "mkfifo failed");
}

/** Starts a master (or --check-config) that must be refused; checks nothing was bound or written. */
async function assertRefused(r: Refusal): Promise<string> {
  await using dir = await tempDir();
  const port = freePort();
  const pidfile = `${dir.path}/arbiter.pid`;
  await r.plant?.(dir.path);
  const before = await Deno.lstat(pidfile).catch(() => undefined);
  await Deno.writeTextFile(
    `${dir.path}/app.toml`,
    [
      `command = ${JSON.stringify(PY_WORKER)}`,
      `bind = "127.0.0.1:${port}"`,
      `pidfile = "arbiter.pid"`,
      ...(r.config ?? []),
    ].join("\n") + "\n",
  );
  await using master = startArbiter(["-c", "app.toml", ...(r.args ?? [])], { cwd: dir.path });
  const { code } = await master.waitExit(30_000);
  const stderr = master.stderr();
  assertEquals(code, r.code, stderr);
  assert(r.message.test(stderr), `expected ${r.message} in:\n${stderr}`);
  assert(!stderr.includes("    at "), `a message, not a stack trace:\n${stderr}`);
  const after = await Deno.lstat(pidfile).catch(() => undefined);
  if (r.keepsPidfile) assertEquals(after?.ino, before?.ino, "the planted pidfile is left alone");
  else assertEquals(after, undefined, "no pidfile written");
  const names = [...Deno.readDirSync(dir.path)].map((e) => e.name);
  assert(!names.some((n) => n.endsWith(".tmp")), `no temporary file left: ${names}`);
  Deno.listen({ hostname: "127.0.0.1", port }).close(); // the port was never bound
  return stderr;
}

Deno.test("absurd numbers: exit 2 naming the key and its range, at start and in --check-config", async () => {
  const cases: [string, RegExp][] = [
    ["workers = 1e9", /workers: expected an integer from 1 to 10000, got 1000000000/],
    ["backlog = 1e12", /backlog: expected an integer from 1 to 2147483647/],
    ["timeout = 1e300", /timeout: expected a number of seconds from 0 to 31536000/],
    ["hook_timeout = 1e10", /hook_timeout: expected a number of seconds from 0 to 31536000/],
    ["max_worker_lifetime = -1", /max_worker_lifetime: expected a number of seconds/],
    ["user = 1e12", /user: expected a user name or a numeric uid from 0 to 4294967294/],
  ];
  for (const [line, message] of cases) {
    await assertRefused({ config: [line], code: 2, message });
    await assertRefused({ config: [line], args: ["--check-config"], code: 2, message });
  }
  // Command-line options go through the same ranges.
  await assertRefused({ args: ["-w", "10001"], code: 2, message: /--workers: .*to 10000/ });
  await assertRefused({ args: ["-t", "1e300"], code: 2, message: /--timeout: expected/ });
  await assertRefused({
    args: ["--graceful-timeout", "99999999999"],
    code: 2,
    message: /--graceful-timeout: expected a number of seconds from 0 to 31536000/,
  });
});

Deno.test("ctl scale shares the workers maximum", async () => {
  await using ctl = startArbiter(["ctl", "--socket", "/nonexistent.sock", "scale", "10001"]);
  assertEquals((await ctl.waitExit()).code, 2);
  assert(/ctl scale: expected a number of workers from 1 to 10000/.test(ctl.stderr()));
});

Deno.test("unknown user or group: exit 2 before the pidfile or any socket, and in --check-config", async () => {
  const cases: [string[], RegExp][] = [
    [['user = "no-such-user-x"'], /user: no user named "no-such-user-x"/],
    [['group = "no-such-group-x"'], /group: no group named "no-such-group-x"/],
    [[`user = ${UNLISTED_UID}`], /user: uid 54321 has no entry in \/etc\/passwd.*set `group`/],
  ];
  for (const [config, message] of cases) {
    await assertRefused({ config, code: 2, message });
    await assertRefused({ config, args: ["--check-config"], code: 2, message });
  }
});

Deno.test("hooks, chdir and the command are checked before binding", async () => {
  const hook = /on_exit: cannot execute "\/nonexistent\/hook": no such file/;
  await assertRefused({ config: ['on_exit = ["/nonexistent/hook"]'], code: 2, message: hook });
  await assertRefused({
    config: ['chdir = "nowhere"'],
    code: 2,
    message: /chdir: .* does not exist/,
  });
  const command = /cannot execute "\/nonexistent\/python3"/;
  await assertRefused({ args: ["--", "/nonexistent/python3"], code: 3, message: command });
  await assertRefused({
    args: ["--check-config", "--", "/nonexistent/python3"],
    code: 2,
    message: command,
  });
});

Deno.test("planted pidfiles are refused with exit 1 at once, never read or replaced", async () => {
  const plants: [string, (path: string) => Promise<void>, RegExp][] = [
    ["FIFO", (p) => mkfifo(p), /pidfile .*arbiter\.pid is a FIFO, not a regular file/],
    ["symlink to /dev/zero", (p) => Deno.symlink("/dev/zero", p), /is a symbolic link/],
    ["directory", (p) => Deno.mkdir(p), /is a directory, not a regular file/],
    ["not a pid", (p) => Deno.writeTextFile(p, "precious data\n"), /does not hold a pid/],
  ];
  for (const [name, plant, message] of plants) {
    const setup = (dir: string) => plant(`${dir}/arbiter.pid`);
    const started = performance.now();
    await assertRefused({ plant: setup, code: 1, message, keepsPidfile: true });
    assert(performance.now() - started < 20_000, `${name}: refused promptly`);
    // --check-config sees it too (as a config problem).
    await assertRefused({
      plant: setup,
      args: ["--check-config"],
      code: 2,
      message,
      keepsPidfile: true,
    });
  }
});

Deno.test("--check-config accepts a pidfile naming the running master it checks for", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/arbiter.pid`, `${Deno.pid}\n`); // alive: this runner
  await using check = startArbiter(["--check-config", "-p", "arbiter.pid", "--", ...PY_WORKER], {
    cwd: dir.path,
  });
  assertEquals((await check.waitExit()).code, 0, check.stderr());
});

Deno.test("a hook_timeout past what one timer holds does not kill on_starting at once", async () => {
  await using dir = await tempDir();
  const port = freePort();
  await Deno.writeTextFile(
    `${dir.path}/app.toml`,
    `on_starting = ["sleep", "0.2"]\nhook_timeout = 3000000\ntimeout = 31536000\n`,
  );
  await using master = await startServing(PY_WORKER, {
    port,
    workers: 1,
    args: ["-c", `${dir.path}/app.toml`],
  });
  assert(!/hook on_starting failed/.test(master.stderr()), master.stderr());
});
