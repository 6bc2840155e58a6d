import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { assertConfigErrorAsync } from "./_testing.ts";
import { formatConfig, loadConfig } from "./load.ts";
import type { Config } from "./types.ts";

/** Temporary directories made by the running test, removed when it ends. */
const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter_config_test_" });
  tempDirs.push(dir);
  return dir;
}

/** `Deno.test`, removing the test's temporary directories afterwards. */
function test(name: string, fn: () => Promise<void>) {
  Deno.test(name, async () => {
    try {
      await fn();
    } finally {
      for (const dir of tempDirs.splice(0)) await Deno.remove(dir, { recursive: true });
    }
  });
}

/** A temporary directory holding `app.toml` with the given text. */
async function withConfig(toml: string): Promise<string> {
  const dir = await tempDir();
  await Deno.writeTextFile(join(dir, "app.toml"), toml);
  return dir;
}

/** Load `app.toml` from `dir`, given as a path relative to `dir`. */
function loadFrom(dir: string, overrides = {}, command?: string[], env = {}) {
  return loadConfig({ configPath: "app.toml", command, overrides }, env, dir);
}

test("loadConfig() applies the documented defaults (docs/contract.md, Configuration)", async () => {
  const config = await loadConfig({ command: ["./app"], overrides: {} }, {}, "/srv");
  deepStrictEqual(
    config,
    {
      command: ["./app"],
      workers: 1,
      bind: [{ kind: "tcp", hostname: "127.0.0.1", port: 8000, text: "127.0.0.1:8000" }],
      backlog: 2048,
      timeout: 30,
      graceful_timeout: 30,
      boot_timeout: 30,
      shutdown_delay: 0,
      quick_stop_signal: "INT",
      ready: "spawn",
      env: {},
      chdir: "/srv", // no config file: the master's working directory
      worker_output: "inherit",
      worker_usr1: "send",
      log_level: "info",
      log_format: "text",
      max_worker_lifetime: 0,
      max_worker_lifetime_jitter: 0,
      max_worker_memory: 0,
      max_worker_memory_window: 10,
      autoscale: false,
      autoscale_interval: 1,
      autoscale_quiet_period: 30,
      hook_timeout: 30,
      reload: false,
      reload_paths: [],
      reload_extensions: [],
    } satisfies Config,
  );
});

test("loadConfig() binds 0.0.0.0:$PORT by default when PORT is set", async () => {
  const req = { command: ["./app"], overrides: {} };
  const config = await loadConfig(req, { PORT: "5000" }, "/");
  deepStrictEqual(config.bind.map((b) => b.text), ["0.0.0.0:5000"]);
  const empty = await loadConfig(req, { PORT: "" }, "/");
  deepStrictEqual(empty.bind.map((b) => b.text), ["127.0.0.1:8000"]);
  await assertConfigErrorAsync(loadConfig(req, { PORT: "http" }, "/"), "PORT:", 'got "http"');
  await assertConfigErrorAsync(loadConfig(req, { PORT: "70000" }, "/"), "PORT:", "65535");
  // PORT is not read when a bind is given.
  const given = await loadConfig({ ...req, overrides: { bind: ["[::1]:1"] } }, { PORT: "x" }, "/");
  deepStrictEqual(given.bind.map((b) => b.text), ["[::1]:1"]);
});

test("loadConfig() reads the file and converts values", async () => {
  const dir = await withConfig(`
command = ["python3", "app.py"]
workers = 3
bind = ["0.0.0.0:8000", "[::]:8000", "fd://3"]
timeout = 0.5
ready = "notify"
env = { FOO = "bar", "WITH SPACE" = "1" }
user = 1000
group = "www"
umask = "022"
log_level = "warn"
on_reload = ["./hook", "reload"]
max_worker_lifetime = 3600
`);
  const config = await loadFrom(dir);
  strictEqual(config.config_file, join(dir, "app.toml"));
  deepStrictEqual(config.command, ["python3", "app.py"]);
  strictEqual(config.workers, 3);
  deepStrictEqual(config.bind.map((b) => b.kind), ["tcp", "tcp", "fd"]);
  strictEqual(config.timeout, 0.5);
  strictEqual(config.ready, "notify");
  deepStrictEqual(config.env, { FOO: "bar", "WITH SPACE": "1" });
  strictEqual(config.user, "1000");
  strictEqual(config.group, "www");
  strictEqual(config.umask, 0o022);
  strictEqual(config.log_level, "warning");
  deepStrictEqual(config.on_reload, ["./hook", "reload"]);
  strictEqual(config.on_exit, undefined);
  strictEqual(config.max_worker_lifetime, 3600);
});

test("log_level: Gunicorn's critical is read as fatal, in the file and as an option", async () => {
  const dir = await withConfig(`command = ["x"]\nlog_level = "critical"\n`);
  strictEqual((await loadFrom(dir)).log_level, "fatal");
  strictEqual((await loadFrom(dir, { log_level: "critical" })).log_level, "fatal");
  strictEqual((await loadFrom(dir, { log_level: "error" })).log_level, "error");
});

test("loadConfig(): options override the file, the command after -- too", async () => {
  const dir = await withConfig(`
command = ["python3", "app.py"]
workers = 3
bind = "127.0.0.1:9000"
timeout = 10
log_format = "json"
`);
  const config = await loadFrom(
    dir,
    { workers: 5, bind: ["0.0.0.0:80", "0.0.0.0:81"], reload: true },
    ["node", "server.js"],
  );
  deepStrictEqual(config.command, ["node", "server.js"]);
  strictEqual(config.workers, 5);
  deepStrictEqual(config.bind.map((b) => b.text), ["0.0.0.0:80", "0.0.0.0:81"]);
  strictEqual(config.timeout, 10, "file value kept where no option is given");
  strictEqual(config.log_format, "json");
  strictEqual(config.reload, true);
});

test("loadConfig() resolves file paths against the file's directory", async () => {
  const dir = await withConfig(`
command = ["./app"]
bind = "unix:run/app.sock"
pidfile = "run/app.pid"
log_file = "app.log"
control_socket = "ctl.sock"
reload_paths = ["src", "/etc/app"]
`);
  const cwd = await tempDir();
  const config = await loadConfig({ configPath: join(dir, "app.toml"), overrides: {} }, {}, cwd);
  deepStrictEqual(config.bind, [{
    kind: "unix",
    path: join(dir, "run/app.sock"),
    text: `unix:${join(dir, "run/app.sock")}`,
  }]);
  strictEqual(config.pidfile, join(dir, "run/app.pid"));
  strictEqual(config.chdir, dir, "chdir defaults to the file's directory, not the cwd");
  strictEqual(config.log_file, join(dir, "app.log"));
  strictEqual(config.control_socket, join(dir, "ctl.sock"));
  deepStrictEqual(config.reload_paths, [join(dir, "src"), "/etc/app"]);
});

test("loadConfig() resolves option paths against cwd", async () => {
  const dir = await withConfig(`command = ["./app"]\npidfile = "file.pid"`);
  const cwd = await tempDir();
  const config = await loadConfig(
    {
      configPath: join(dir, "app.toml"),
      overrides: { pidfile: "cli.pid", log_file: "cli.log", bind: ["unix:cli.sock"] },
    },
    {},
    cwd,
  );
  strictEqual(config.pidfile, join(cwd, "cli.pid"));
  strictEqual(config.log_file, join(cwd, "cli.log"));
  strictEqual(config.bind[0].text, `unix:${join(cwd, "cli.sock")}`);
  const noFile = await loadConfig({ command: ["x"], overrides: { pidfile: "a.pid" } }, {}, cwd);
  strictEqual(noFile.pidfile, join(cwd, "a.pid"));
});

test("loadConfig() names an unknown key and suggests a near one", async () => {
  const dir = await withConfig(`command = ["x"]\nworker = 2\n[server]\nport = 1`);
  const error = await assertConfigErrorAsync(loadFrom(dir));
  strictEqual(
    error.message,
    'app.toml: unknown key "worker" (did you mean "workers"?)\napp.toml: unknown key "server"',
  );
  const dashed = await withConfig(`command = ["x"]\ngraceful-timeout = 2`);
  await assertConfigErrorAsync(loadFrom(dashed), '(did you mean "graceful_timeout"?)');
});

test("loadConfig() names key, value and expectation of a bad value", async () => {
  const cases: [string, ...string[]][] = [
    ["workers = 0", "app.toml: workers: expected an integer from 1 to 10000, got 0"],
    ['workers = "4"', 'app.toml: workers: expected an integer from 1 to 10000, got "4"'],
    ["workers = 1.5", "app.toml: workers: expected an integer from 1 to 10000, got 1.5"],
    ["backlog = -1", "app.toml: backlog: expected an integer from 1 to 2147483647, got -1"],
    [
      "timeout = -0.5",
      "app.toml: timeout: expected a number of seconds from 0 to 31536000 (365 days), got -0.5",
    ],
    [
      "timeout = inf",
      "app.toml: timeout: expected a number of seconds from 0 to 31536000 (365 days), got inf",
    ],
    ['ready = "now"', 'app.toml: ready: expected one of "spawn", "notify", got "now"'],
    ["env = { FOO = 1 }", 'app.toml: env.FOO: expected a string (quote numbers: FOO = "1"), got 1'],
    ['on_reload = ["a", ""]', 'app.toml: on_reload[1]: expected a non-empty string, got ""'],
    ["bind = []", "app.toml: bind: expected a non-empty array of listen addresses, got []"],
    ['bind = ["a:1", 2]', "app.toml: bind[1]: expected a listen address, got 2"],
    ["bind = 8000", "app.toml: bind: expected a listen address or an array of them, got 8000"],
    [
      "user = -1",
      "app.toml: user: expected a user name or a numeric uid from 0 to 4294967294, got -1",
    ],
    ["umask = 511.5", "app.toml: umask: expected an integer from 0 to 0o777"],
    ['umask = "0999"', "app.toml: umask: expected an integer from 0 to 0o777, or an octal"],
    ['reload = "yes"', 'app.toml: reload: expected true or false, got "yes"'],
    ['log_level = "loud"', 'app.toml: log_level: expected one of "trace", "debug"'],
    ["reload_paths = 1", "app.toml: reload_paths: expected an array of paths, got 1"],
    // Absurd numbers: each key has an upper bound too (docs/contract.md, "Security").
    ["workers = 1e9", "app.toml: workers: expected an integer from 1 to 10000, got 1000000000"],
    ["workers = 10001", "app.toml: workers: expected an integer from 1 to 10000, got 10001"],
    ["backlog = 1e12", "app.toml: backlog: expected an integer from 1 to 2147483647, got"],
    ["backlog = 2147483648", "app.toml: backlog: expected an integer from 1 to 2147483647"],
    ["timeout = 1e300", "app.toml: timeout: expected a number of seconds from 0 to 31536000"],
    ["graceful_timeout = 31536001", "app.toml: graceful_timeout: expected a number of seconds"],
    ["boot_timeout = nan", "app.toml: boot_timeout: expected a number of seconds", "got nan"],
    ["max_worker_lifetime = 1e10", "app.toml: max_worker_lifetime: expected a number of seconds"],
    ["max_worker_lifetime_jitter = -1", "app.toml: max_worker_lifetime_jitter: expected a number"],
    ["max_surge = 0", "app.toml: max_surge: expected an integer from 1 to 10000, got 0"],
    ["max_surge = 1.5", "app.toml: max_surge: expected an integer from 1 to 10000"],
    ["hook_timeout = 1e9", "app.toml: hook_timeout: expected a number of seconds from 0"],
    ["user = 4294967295", "app.toml: user: expected a user name or a numeric uid from 0 to"],
    ["group = 1e15", "app.toml: group: expected a group name or a numeric gid from 0 to"],
    ["workers = 99999999999999999999", "app.toml:2:", "cannot be represented losslessly"],
  ];
  for (const [line, ...message] of cases) {
    const dir = await withConfig(`command = ["x"]\n${line}\n`);
    await assertConfigErrorAsync(loadFrom(dir), ...message);
  }
});

test("loadConfig() accepts every bound itself", async () => {
  const dir = await withConfig(
    `command = ["x"]\nworkers = 10000\nbacklog = 2147483647\ntimeout = 31536000\n` +
      `max_worker_lifetime = 2592000\nhook_timeout = 31536000\nuser = 4294967294\n`,
  );
  const config = await loadFrom(dir);
  deepStrictEqual(
    [config.workers, config.backlog, config.timeout, config.max_worker_lifetime, config.user],
    [10000, 2147483647, 31536000, 2592000, "4294967294"],
  );
});

test("loadConfig() reports every problem, one line each", async () => {
  const dir = await withConfig(`command = ["x"]\nworkers = 0\ntimeout = "1"\nwokers = 1\n`);
  const error = await assertConfigErrorAsync(loadFrom(dir));
  deepStrictEqual(error.message.split("\n"), [
    "app.toml: workers: expected an integer from 1 to 10000, got 0",
    'app.toml: timeout: expected a number of seconds from 0 to 31536000 (365 days), got "1"',
    'app.toml: unknown key "wokers" (did you mean "workers"?)',
  ]);
});

test("loadConfig() names the option for a bad option value", async () => {
  const dir = await withConfig(`command = ["x"]\n`);
  await assertConfigErrorAsync(
    loadFrom(dir, { workers: 0 }),
    "--workers: expected an integer from 1 to 10000, got 0",
  );
  await assertConfigErrorAsync(loadFrom(dir, { bind: ["foo"] }), '--bind: "foo" is not');
  await assertConfigErrorAsync(loadFrom(dir, {}, [""]), "worker command[0]:", 'got ""');
});

test("loadConfig() reports unparsable TOML with its line and column", async () => {
  const dir = await withConfig(`command = ["x"]\nworkers = 2\ntimeout = \n`);
  await assertConfigErrorAsync(loadFrom(dir), "app.toml:3:", "invalid TOML");
  const dup = await withConfig(`workers = 1\nworkers = 2\n`);
  await assertConfigErrorAsync(loadFrom(dup), "app.toml:2:", "invalid TOML");
});

test("loadConfig() names a missing or unreadable config file", async () => {
  const dir = await tempDir();
  await assertConfigErrorAsync(
    loadConfig({ configPath: "nope.toml", overrides: {} }, {}, dir),
    "nope.toml: cannot read the config file: no such file or directory",
  );
  // Tests run as root, which reads a chmod 000 file anyway; a directory is
  // an unreadable config file for root too.
  await Deno.mkdir(join(dir, "conf.d"));
  await assertConfigErrorAsync(
    loadConfig({ configPath: "conf.d", overrides: {} }, {}, dir),
    "conf.d: cannot read the config file: it is a directory, not a regular file",
  );
});

test("loadConfig() needs a non-empty worker command", async () => {
  const none = await withConfig(`workers = 2\n`);
  await assertConfigErrorAsync(
    loadFrom(none),
    "no worker command: give one after `--` or set `command` in the config file",
  );
  await assertConfigErrorAsync(
    loadConfig({ overrides: {} }, {}, "/"),
    "no worker command",
  );
  const empty = await withConfig(`command = []\n`);
  await assertConfigErrorAsync(loadFrom(empty), "app.toml: command: expected a non-empty array");
  const blank = await withConfig(`command = [""]\n`);
  await assertConfigErrorAsync(loadFrom(blank), "app.toml: command[0]: expected a non-empty");
  const str = await withConfig(`command = "python3 app.py"\n`);
  await assertConfigErrorAsync(loadFrom(str), "app.toml: command: expected a non-empty array");
});

test("loadConfig() rejects bad and duplicate binds", async () => {
  const bad = await withConfig(`command = ["x"]\nbind = "foo"\n`);
  await assertConfigErrorAsync(
    loadFrom(bad),
    'app.toml: bind: "foo" is not a listen address; expected HOST:PORT, [IPV6]:PORT',
  );
  const second = await withConfig(`command = ["x"]\nbind = ["a:1", "localhost:99999"]\n`);
  await assertConfigErrorAsync(loadFrom(second), "app.toml: bind[1]:", '"localhost:99999"');
  const dup = await withConfig(`command = ["x"]\nbind = ["unix:a.sock", "unix:./a.sock"]\n`);
  await assertConfigErrorAsync(loadFrom(dup), "app.toml: bind[1]:", "listed more than once");
});

test("loadConfig() checks chdir, log_file's directory and metrics_bind", async () => {
  const chdir = await withConfig(`command = ["x"]\nchdir = "missing"\n`);
  await assertConfigErrorAsync(loadFrom(chdir), "app.toml: chdir:", "missing", "does not exist");
  const notDir = await withConfig(`command = ["x"]\nchdir = "app.toml"\n`);
  await assertConfigErrorAsync(loadFrom(notDir), "app.toml: chdir:", "is not a directory");
  const log = await withConfig(`command = ["x"]\nlog_file = "missing/app.log"\n`);
  await assertConfigErrorAsync(loadFrom(log), "app.toml: log_file:", "missing", "does not exist");
  const logDir = await withConfig(`command = ["x"]\nlog_file = "."\n`);
  await assertConfigErrorAsync(loadFrom(logDir), "app.toml: log_file:", "is a directory");
  const metrics = await withConfig(`command = ["x"]\nmetrics_bind = "unix:/m.sock"\n`);
  await assertConfigErrorAsync(loadFrom(metrics), "app.toml: metrics_bind:", "HOST:PORT");
  const ok = await withConfig(`command = ["x"]\nmetrics_bind = "0.0.0.0:9100"\n`);
  strictEqual((await loadFrom(ok)).metrics_bind, "0.0.0.0:9100");
});

test("formatConfig() output loads back to the same config", async () => {
  const dir = await withConfig(`
command = ["python3", "-m", "app", "--flag=a b"]
workers = 4
bind = ["0.0.0.0:8000", "[::1]:8001", "unix:run/app.sock", "fd://3"]
backlog = 64
timeout = 2.5
graceful_timeout = 5
boot_timeout = 60
ready = "notify"
pidfile = "app.pid"
env = { FOO = "bar", "A.B" = "quote \\" me" }
chdir = "."
user = 33
group = "www-data"
umask = 0o027
control_socket = "ctl.sock"
metrics_bind = "127.0.0.1:9100"
worker_output = "prefix"
log_level = "debug"
log_format = "json"
log_file = "app.log"
max_worker_lifetime = 3600
max_worker_lifetime_jitter = 60
on_starting = ["./hooks/start"]
post_exit = ["./hooks/exit", "--verbose"]
hook_timeout = 5
reload = true
reload_paths = ["src"]
reload_extensions = [".py", ".toml"]
`);
  const config = await loadFrom(dir);
  const text = formatConfig(config);
  ok(text.startsWith(`# effective configuration of ${join(dir, "app.toml")}\n`));
  ok(text.includes('umask = "0o027"'), text);
  const elsewhere = await withConfig(text);
  const again = await loadFrom(elsewhere);
  deepStrictEqual({ ...again, config_file: undefined }, { ...config, config_file: undefined });

  const minimal = await loadConfig({ command: ["x"], overrides: {} }, {}, "/");
  const back = await loadFrom(await withConfig(formatConfig(minimal)));
  deepStrictEqual({ ...back, config_file: undefined }, { ...minimal, config_file: undefined });
});
