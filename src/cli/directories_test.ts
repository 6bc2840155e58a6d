// Where the runtime directory goes and which written-to directories are refused.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { Config } from "../config/types.ts";
import { chooseRuntimeDir, directoryProblems, MAX_RUNTIME_DIR_BYTES } from "./directories.ts";

async function withTemp(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "directories-test-" });
  try {
    await Deno.chmod(dir, 0o755); // passable by others, so a root master may use it too
    await fn(Deno.realPathSync(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A config with only the keys these checks read. */
function config(extra: Partial<Config> = {}): Config {
  return { bind: [], ...extra } as unknown as Config;
}

Deno.test("runtime dir: runtime_dir, then $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR, temp dir, control socket's", async () => {
  await withTemp((base) => {
    const dirs = ["key", "systemd", "xdg", "tmp", "ctl"].map((n) => `${base}/${n}`);
    for (const d of dirs) Deno.mkdirSync(d, { mode: 0o755 });
    const [key, systemd, xdg, tmp, ctl] = dirs;
    const env = { RUNTIME_DIRECTORY: `${systemd}:/other`, XDG_RUNTIME_DIR: xdg, TMPDIR: tmp };
    const withCtl = config({ control_socket: `${ctl}/ctl.sock` });
    deepStrictEqual(chooseRuntimeDir(config({ runtime_dir: key, ...withCtl }), env), {
      path: key,
      from: "runtime_dir",
    });
    deepStrictEqual(chooseRuntimeDir(withCtl, env), { path: systemd, from: "$RUNTIME_DIRECTORY" });
    const missing = `${base}/missing`;
    deepStrictEqual(chooseRuntimeDir(withCtl, { ...env, RUNTIME_DIRECTORY: missing }), {
      path: xdg,
      from: "$XDG_RUNTIME_DIR",
    });
    deepStrictEqual(chooseRuntimeDir(withCtl, { TMPDIR: tmp, XDG_RUNTIME_DIR: "relative" }), {
      path: tmp,
      from: "$TMPDIR",
    });
    deepStrictEqual(chooseRuntimeDir(withCtl, { TMPDIR: missing }), {
      path: ctl,
      from: "control_socket's directory",
    });
  });
});

Deno.test("runtime dir: a runtime_dir that does not work is an error naming the key, nothing else tried", async () => {
  await withTemp((base) => {
    const file = `${base}/file`;
    Deno.writeTextFileSync(file, "");
    const r = chooseRuntimeDir(config({ runtime_dir: file }), { TMPDIR: base });
    deepStrictEqual(r, { problem: `runtime_dir: "${file}" is not a directory` });
    const missing = chooseRuntimeDir(config({ runtime_dir: `${base}/missing` }), { TMPDIR: base });
    deepStrictEqual(missing, { problem: `runtime_dir: "${base}/missing" does not exist` });
    const long = `${base}/${"d".repeat(MAX_RUNTIME_DIR_BYTES)}`;
    Deno.mkdirSync(long);
    const tooLong = chooseRuntimeDir(config({ runtime_dir: long }), {});
    ok("problem" in tooLong && tooLong.problem.includes("bytes long"), JSON.stringify(tooLong));
  });
});

Deno.test("runtime dir: none works: one line naming runtime_dir and every place tried", () => {
  const r = chooseRuntimeDir(config({ control_socket: "/nonexistent/run/ctl.sock" }), {
    TMPDIR: "/nonexistent/tmp",
  });
  ok("problem" in r);
  strictEqual(
    r.problem,
    "runtime_dir: no directory for the master's private notify sockets: " +
      "/nonexistent/tmp ($TMPDIR) does not exist; " +
      "/nonexistent/run (control_socket's directory) does not exist; " +
      "set runtime_dir to a writable directory (in a container: the emptyDir or tmpfs volume)",
  );
});

Deno.test("runtime dir: a root master with workers of another user takes one others can pass through", async () => {
  await withTemp((base) => {
    const closed = `${base}/closed`;
    Deno.mkdirSync(closed);
    Deno.chmodSync(closed, 0o700);
    const env = { XDG_RUNTIME_DIR: closed, TMPDIR: base };
    const nobody = config({ user: "nobody" });
    deepStrictEqual(chooseRuntimeDir(nobody, env, 0), { path: base, from: "$TMPDIR" });
    const xdg = { path: closed, from: "$XDG_RUNTIME_DIR" };
    deepStrictEqual(chooseRuntimeDir(config(), env, 0), xdg, "workers run as root too");
    deepStrictEqual(chooseRuntimeDir(nobody, env, 1000), xdg, "a non-root master cannot switch");
  });
});

Deno.test("a runtime_dir given as a symlink resolves to the real directory", async () => {
  await withTemp((base) => {
    Deno.mkdirSync(`${base}/real`, { mode: 0o755 });
    Deno.symlinkSync(`${base}/real`, `${base}/link`);
    deepStrictEqual(chooseRuntimeDir(config({ runtime_dir: `${base}/link` }), {}), {
      path: `${base}/real`,
      from: "runtime_dir",
    });
  });
});

Deno.test("directoryProblems() names the key of each directory that is missing or not one", async () => {
  await withTemp((base) => {
    Deno.writeTextFileSync(`${base}/file`, "");
    Deno.mkdirSync(`${base}/log.txt`);
    const problems = directoryProblems(config({
      control_socket: `${base}/missing/ctl.sock`,
      bind: [{ kind: "unix", path: `${base}/file/app.sock`, text: `unix:${base}/file/app.sock` }],
      pidfile: `${base}/missing/a.pid`,
      log_file: `${base}/ok.log`,
    }));
    deepStrictEqual(problems, [
      `control_socket: the directory "${base}/missing" of the control socket does not exist`,
      `bind: the directory "${base}/file" of the socket of unix:${base}/file/app.sock ` +
      "is not a directory",
      `pidfile: the directory "${base}/missing" of the pidfile does not exist`,
    ]);
    deepStrictEqual(directoryProblems(config({ pidfile: `${base}/a.pid` })), []);
    // The log file's directory (loadConfig refuses a missing one first; checked here too).
    deepStrictEqual(directoryProblems(config({ log_file: `${base}/missing/app.log` })), [
      `log_file: the directory "${base}/missing" of the log file does not exist`,
    ]);
  });
});
