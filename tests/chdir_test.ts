// The workers' directory (docs/contract.md, "Configuration"): `chdir`
// defaults to the config file's directory, and a relative `chdir` is relative
// to the file, wherever the master is started from; without a config file it
// is the master's working directory, as in Gunicorn.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { freePort, httpGetJson, startArbiter, WORKERS_DIR } from "./_harness.ts";
import { generationReady, tempDir } from "./_workers.ts";

async function workerCwd(
  args: string[],
  cwd: string,
  port: number,
): Promise<string> {
  await using master = startArbiter(args, { cwd });
  await master.waitForLog(generationReady(1));
  const { cwd: seen } = await httpGetJson<{ cwd: string }>(`http://127.0.0.1:${port}/`);
  master.signal("SIGTERM");
  assertEquals((await master.waitExit()).code, 0, master.stderr());
  return seen;
}

Deno.test("chdir: the config file's directory by default, relative to the file when set, from any cwd", async () => {
  await using dir = await tempDir();
  const root = Deno.realPathSync(dir.path);
  const app = `${root}/app`;
  const elsewhere = `${root}/elsewhere`;
  await Deno.mkdir(`${app}/sub`, { recursive: true });
  await Deno.mkdir(elsewhere);
  // A program path relative to the workers' directory: it only starts from there.
  await Deno.copyFile(`${WORKERS_DIR}/py_worker.py`, `${app}/py_worker.py`);
  await Deno.copyFile(`${WORKERS_DIR}/py_worker.py`, `${app}/sub/py_worker.py`);
  const port = freePort();
  const write = (extra: string) =>
    Deno.writeTextFile(
      `${app}/app.toml`,
      `command = ["python3", "py_worker.py"]\nbind = "127.0.0.1:${port}"\n${extra}`,
    );

  await write("");
  assertEquals(await workerCwd(["--config", `${app}/app.toml`], elsewhere, port), app);
  await write('chdir = "sub"\n');
  assertEquals(await workerCwd(["--config", "../app/app.toml"], elsewhere, port), `${app}/sub`);
  // No config file: the master's working directory.
  const argv = ["-b", `127.0.0.1:${port}`, "--", "python3", `${WORKERS_DIR}/py_worker.py`];
  assertEquals(await workerCwd(argv, elsewhere, port), elsewhere);
});
