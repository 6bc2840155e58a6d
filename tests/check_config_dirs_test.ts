// `--check-config` checks every directory the master will create a file in
// (src/cli/directories.ts): the control socket's, each unix bind's, the
// pidfile's, the log file's and the runtime directory. A missing one is exit 2
// naming its key, in --check-config and at a real start alike, before
// anything is bound or written.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, startArbiter } from "./_harness.ts";
import { PY_WORKER, tempDir } from "./_workers.ts";

Deno.test("--check-config and a start: a missing directory for any file the master creates is exit 2 naming the key", async () => {
  await using dir = await tempDir();
  const gone = `${dir.path}/gone`;
  const port = freePort();
  await Deno.writeTextFile(
    `${dir.path}/app.toml`,
    [
      `command = ${JSON.stringify(PY_WORKER)}`,
      `bind = ["127.0.0.1:${port}", "unix:${gone}/app.sock"]`,
      `control_socket = "${gone}/ctl.sock"`,
      `pidfile = "${gone}/arbiter.pid"`,
      `runtime_dir = "${gone}/run"`,
    ].join("\n") + "\n",
  );
  for (const args of [["--check-config"], []]) {
    await using master = startArbiter(["-c", `${dir.path}/app.toml`, ...args]);
    const { code } = await master.waitExit(30_000);
    const stderr = master.stderr();
    assertEquals(code, 2, stderr);
    for (const key of ["control_socket", "bind", "pidfile", "runtime_dir"]) {
      assert(
        new RegExp(`^(arbiter: )?${key}: .*${gone}.* does not exist`, "m").test(stderr),
        `${key} named in:\n${stderr}`,
      );
    }
    Deno.listen({ hostname: "127.0.0.1", port }).close(); // never bound
  }
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name), ["app.toml"], "nothing written");

  // The log file's directory: refused while the config loads, naming the key.
  await Deno.writeTextFile(
    `${dir.path}/app.toml`,
    `command = ${JSON.stringify(PY_WORKER)}\nlog_file = "${gone}/arbiter.log"\n`,
  );
  for (const args of [["--check-config"], []]) {
    await using master = startArbiter(["-c", `${dir.path}/app.toml`, ...args]);
    assertEquals((await master.waitExit(30_000)).code, 2, master.stderr());
    assert(/log_file: .*gone.* does not exist/.test(master.stderr()), master.stderr());
  }
});
