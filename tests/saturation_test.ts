// Issue 15 end to end, as far as it goes before the core integration:
// `arbiter ctl top` against a real master, piped (plain lines).
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, MAIN_TS, startArbiter } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

Deno.test("arbiter ctl top -n 2, piped: one master line and one line per worker per refresh", async () => {
  await using dir = await tempDir();
  const socket = `${dir.path}/ctl.sock`;
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${freePort()}"\n` +
      `control_socket = "ctl.sock"\n`,
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN_TS,
      "ctl",
      "-s",
      socket,
      "top",
      "-n",
      "2",
      "--interval",
      "0.2",
    ],
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const lines = stdout.trimEnd().split("\n");
  assertEquals(lines.filter((l) => l.includes(` master pid=${master.pid} `)).length, 2, stdout);
  assertEquals(lines.filter((l) => / worker id=[01] pid=\d+ /.test(l)).length, 4, stdout);
  assert(!stdout.includes("\x1b"), "no escape sequences when piped");
});
