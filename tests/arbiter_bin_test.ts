// The black-box tests run against a compiled `arbiter` when ARBITER_BIN names
// one. `deno compile` cannot download its runtime on these machines, so the
// switch is exercised with a stand-in: an executable that, like the binary,
// takes only arbiter's own arguments (see src/spawn/self_test.ts).
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  ARBITER_BIN_ENV,
  arbiterArgv,
  arbiterCommand,
  freePort,
  isWorkerProgram,
  MAIN_TS,
  REPO_ROOT,
  startArbiter,
  waitForHttp,
} from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

Deno.test("ARBITER_BIN: the harness starts that executable, for the master and for ctl", async () => {
  await using dir = await tempDir();
  const standIn = `${dir.path}/arbiter`;
  const calls = `${dir.path}/calls`;
  // Records each start, then becomes arbiter (same pid, as a binary would be).
  await Deno.writeTextFile(
    standIn,
    `#!/bin/sh\necho "$$ $*" >> '${calls}'\n` +
      `exec '${Deno.execPath()}' run -A --quiet --config '${REPO_ROOT}/deno.json' '${MAIN_TS}' "$@"\n`,
    { mode: 0o755 },
  );
  const saved = Deno.env.get(ARBITER_BIN_ENV);
  Deno.env.set(ARBITER_BIN_ENV, standIn);
  try {
    assertEquals(arbiterArgv(), [standIn]);
    const port = freePort();
    await using master = startArbiter([
      "-w",
      "2",
      "-b",
      `127.0.0.1:${port}`,
      "--",
      ...PY_WORKER,
    ]);
    await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
    await waitForHttp(`http://127.0.0.1:${port}/`);
    const workers = await master.waitForChildren(2);
    assert(workers.every(isWorkerProgram));
    const version = await arbiterCommand(["--version"], { stdout: "piped" }).output();
    assertEquals(version.code, 0);
    assert(new TextDecoder().decode(version.stdout).startsWith("arbiter "));
    const lines = (await Deno.readTextFile(calls)).trim().split("\n");
    assertEquals(lines[0].split(" ")[0], String(master.pid), "the master is the stand-in's pid");
    assert(lines.some((l) => l.endsWith(" --version")), lines.join("\n"));
    master.signal("SIGTERM");
    assertEquals((await master.waitExit()).code, 0);
  } finally {
    if (saved === undefined) Deno.env.delete(ARBITER_BIN_ENV);
    else Deno.env.set(ARBITER_BIN_ENV, saved);
  }
  assertEquals(arbiterArgv().slice(-1), [MAIN_TS], "unset: the checkout again");
});

Deno.test("ARBITER_BIN relative to the current directory, as `ARBITER_BIN=./arbiter` gives it", () => {
  const saved = Deno.env.get(ARBITER_BIN_ENV);
  Deno.env.set(ARBITER_BIN_ENV, "./arbiter");
  try {
    assertEquals(arbiterArgv(), [`${Deno.cwd()}/arbiter`]);
  } finally {
    if (saved === undefined) Deno.env.delete(ARBITER_BIN_ENV);
    else Deno.env.set(ARBITER_BIN_ENV, saved);
  }
});
