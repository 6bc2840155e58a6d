/**
 * Chaos: bad input at start-up. Absurd numbers for every numeric
 * key and option, unknown users and groups, and planted pidfiles (a FIFO, a
 * symlink to /dev/zero, a directory, a file that is not a pidfile). Each must
 * be refused promptly with the exit code of docs/contract.md, "Files and exit
 * codes" and a message naming the key, with nothing bound and no pidfile left
 * (a planted one untouched); `--check-config` must refuse the same configs.
 * Then values at the top of each range must work: a 30-day
 * `max_worker_lifetime` and `hook_timeout` start and leave the master idle (no
 * timer spinning at 1 ms).
 *
 *   scripts/deno run -A scripts/chaos/bad_input.ts
 *
 * Everything binds 127.0.0.1 only; each start is bounded by a 20 s limit.
 *
 * @module
 */

import {
  type Check,
  cpuSeconds,
  freePort,
  report,
  sleep,
  startArbiter,
  waitForHttp,
  WSGI_FD,
} from "./_lib.ts";

const dir = Deno.makeTempDirSync({ prefix: "arbiter-chaos-input-" });
const LIMIT_MS = 20_000;

interface Case {
  name: string;
  /** Config lines after command, bind and pidfile. */
  config?: string[];
  /** Extra arguments after `-c app.toml`. */
  args?: string[];
  code: number;
  /** Must appear in the output: the key, and what was expected. */
  message: RegExp;
  /** Plants something at the pidfile path first. */
  plant?: (path: string) => Promise<void>;
}

async function mkfifo(path: string): Promise<void> {
  await new Deno.Command("mkfifo", { args: [path] }).output();
}

/** Runs one refused start; returns a check (exit code, message, nothing bound or written). */
async function refused(c: Case, checkOnly: boolean): Promise<Check> {
  const work = Deno.makeTempDirSync({ dir, prefix: "case-" });
  const port = freePort();
  const pidfile = `${work}/arbiter.pid`;
  await c.plant?.(pidfile);
  const planted = await Deno.lstat(pidfile).catch(() => undefined);
  Deno.writeTextFileSync(
    `${work}/app.toml`,
    [
      `command = ["python3", ${JSON.stringify(WSGI_FD)}]`,
      `bind = "127.0.0.1:${port}"`,
      `pidfile = "arbiter.pid"`,
      ...(c.config ?? []),
    ].join("\n") + "\n",
  );
  const args = ["-c", "app.toml", ...(checkOnly ? ["--check-config"] : []), ...(c.args ?? [])];
  const started = performance.now();
  await using master = startArbiter(args, { cwd: work });
  const code = await master.waitExit(LIMIT_MS).then((s) => s.code, () => "still running");
  const ms = Math.round(performance.now() - started);
  const out = master.stderr().trim();
  const problems: string[] = [];
  const expected = checkOnly ? 2 : c.code;
  if (code !== expected) problems.push(`exit ${code}, expected ${expected}`);
  if (!c.message.test(out)) problems.push(`message lacks ${c.message}`);
  if (out.includes("    at ")) problems.push("stack trace");
  const after = await Deno.lstat(pidfile).catch(() => undefined);
  if (planted && after?.ino !== planted.ino) problems.push("planted pidfile changed");
  if (!planted && after) problems.push("pidfile left");
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
  } catch {
    problems.push("port still bound");
  }
  return {
    name: `${checkOnly ? "--check-config " : ""}${c.name}`,
    ok: problems.length === 0,
    detail: problems.length === 0
      ? `exit ${code} in ${ms} ms: ${out.split("\n")[0].replace(/^.*?arbiter(\[\d+\])?:? /, "")}`
      : `${problems.join("; ")} (${ms} ms): ${out.slice(0, 300)}`,
  };
}

const seconds = (key: string) => new RegExp(`${key}: expected a number of seconds from 0 to`);
const numbers: Case[] = [
  ...["1e9", "0", "-1", "1.5", "10001"].map((v) => ({
    name: `workers = ${v}`,
    config: [`workers = ${v}`],
    code: 2,
    message: /workers: expected an integer from 1 to 10000/,
  })),
  ...["1e12", "0", "2147483648"].map((v) => ({
    name: `backlog = ${v}`,
    config: [`backlog = ${v}`],
    code: 2,
    message: /backlog: expected an integer from 1 to 2147483647/,
  })),
  ...[
    "timeout",
    "graceful_timeout",
    "boot_timeout",
    "max_worker_lifetime",
    "max_worker_lifetime_jitter",
    "hook_timeout",
  ].flatMap((key) =>
    ["1e300", "-1", "inf", "nan", "31536001"].map((v) => ({
      name: `${key} = ${v}`,
      config: [`${key} = ${v}`],
      code: 2,
      message: seconds(key),
    }))
  ),
  { name: "umask = 1e9", config: ["umask = 1e9"], code: 2, message: /umask: expected an integer/ },
  {
    name: "user = 1e12",
    config: ["user = 1e12"],
    code: 2,
    message: /user: expected .* uid from 0/,
  },
  { name: "group = -1", config: ["group = -1"], code: 2, message: /group: expected .* gid from 0/ },
  {
    name: "bind = fd://99999999999",
    config: [],
    args: ["-b", "fd://99999999999"],
    code: 2,
    message: /--bind: "fd:\/\/99999999999" .* from 3 to 2147483647/,
  },
  ...[
    ["-w", "1000000000", /--workers: expected an integer from 1 to 10000/],
    ["-t", "1e300", /--timeout: expected a number of seconds/],
    ["--graceful-timeout", "99999999999", /--graceful-timeout: expected a number of seconds/],
    ["--boot-timeout", "-1", /--boot-timeout: expected a number of seconds/],
  ].map(([option, value, message]) => ({
    name: `${option} ${value}`,
    args: [option as string, value as string],
    code: 2,
    message: message as RegExp,
  })),
];

const identities: Case[] = [
  {
    name: 'user = "no-such-user-x"',
    config: ['user = "no-such-user-x"'],
    code: 2,
    message: /user: no user named "no-such-user-x"/,
  },
  {
    name: 'group = "no-such-group-x"',
    config: ['group = "no-such-group-x"'],
    code: 2,
    message: /group: no group named "no-such-group-x"/,
  },
  {
    name: "user = 54321 (no passwd entry, no group)",
    config: ["user = 54321"],
    code: 2,
    message: /user: uid 54321 has no entry in \/etc\/passwd/,
  },
  {
    name: "on_exit hook that does not exist",
    config: ['on_exit = ["/nonexistent/hook"]'],
    code: 2,
    message: /on_exit: cannot execute/,
  },
  {
    name: "chdir missing",
    config: ['chdir = "nowhere"'],
    code: 2,
    message: /chdir: .* does not exist/,
  },
];

const pidfiles: Case[] = [
  ["FIFO", mkfifo, /is a FIFO, not a regular file/],
  ["symlink to /dev/zero", (p: string) => Deno.symlink("/dev/zero", p), /is a symbolic link/],
  ["symlink to a file", (p: string) => Deno.symlink("/etc/hostname", p), /is a symbolic link/],
  ["directory", (p: string) => Deno.mkdir(p), /is a directory, not a regular file/],
  [
    "file that is not a pidfile",
    (p: string) => Deno.writeTextFile(p, "x".repeat(1 << 20)),
    /larger than 64 bytes/,
  ],
].map(([name, plant, message]) => ({
  name: `pidfile: ${name}`,
  plant: plant as (p: string) => Promise<void>,
  code: 1,
  message: message as RegExp,
}));

const checks: Check[] = [];
for (const c of [...numbers, ...identities, ...pidfiles]) {
  checks.push(await refused(c, false));
  checks.push(await refused(c, true));
}

// The top of the ranges works: 30 days of lifetime, hook and watchdog limits.
{
  const port = freePort();
  const file = `${dir}/top.toml`;
  Deno.writeTextFileSync(
    file,
    [
      `command = ["python3", ${JSON.stringify(WSGI_FD)}]`,
      `bind = "127.0.0.1:${port}"`,
      "max_worker_lifetime = 2592000",
      "max_worker_lifetime_jitter = 2592000",
      "hook_timeout = 2592000",
      'on_starting = ["true"]',
      "timeout = 31536000",
      "graceful_timeout = 31536000",
      "boot_timeout = 31536000",
    ].join("\n") + "\n",
  );
  await using master = startArbiter(["-c", file]);
  let serving = false;
  try {
    await master.waitForLog(/generation 1 is ready/, { timeoutMs: LIMIT_MS });
    await waitForHttp(`http://127.0.0.1:${port}/`);
    serving = true;
  } catch { /* reported below */ }
  const cpu0 = serving ? cpuSeconds(master.pid) : 0;
  await sleep(3000);
  const cpu = serving && !master.exited ? cpuSeconds(master.pid) - cpu0 : NaN;
  const warnings = (master.stderr().match(/TimeoutOverflowWarning/g) ?? []).length;
  checks.push({
    name: "30-day lifetime and hook limit, 365-day timeouts: serving, master idle",
    ok: serving && !master.exited && warnings === 0 && cpu < 0.15,
    detail: `serving: ${serving}; master CPU ${cpu.toFixed(2)} s in 3 s; ` +
      `${warnings} TimeoutOverflowWarning(s)`,
  });
  if (!master.exited) master.signal("SIGTERM");
  await master.waitExit(LIMIT_MS).catch(() => {});
}

Deno.removeSync(dir, { recursive: true });
const failed = checks.filter((c) => !c.ok).length;
Deno.exit(report("bad_input", checks, { cases: checks.length, failed }));
