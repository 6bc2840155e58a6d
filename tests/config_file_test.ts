// The config file is read without blocking and only when it is a small
// regular file: a FIFO or a device is refused at once (exit 2, naming the
// path) at start, and on HUP the running config is kept.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, httpRequest, startArbiter } from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

async function mkfifo(path: string): Promise<void> {
  const { success } = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert(success, "mkfifo failed");
}

Deno.test("--config naming a FIFO or /dev/zero: exit 2 at once, naming the path", async () => {
  await using dir = await tempDir();
  await mkfifo(`${dir.path}/app.toml`);
  for (
    const [path, kind] of [[`${dir.path}/app.toml`, "a FIFO"], ["/dev/zero", "a character device"]]
  ) {
    for (const args of [["--check-config"], []]) {
      await using master = startArbiter(["--config", path, ...args]);
      const { code } = await master.waitExit(15_000);
      assertEquals(code, 2, master.stderr());
      assert(
        master.stderr().includes(`${path}: cannot read the config file: it is ${kind}`),
        master.stderr(),
      );
    }
  }
});

Deno.test("HUP with the config file replaced by a FIFO: refused at once, the running workers are kept", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  const text = [
    `command = ${JSON.stringify(PY_WORKER)}`,
    "workers = 2",
    `bind = "127.0.0.1:${port}"`,
  ].join("\n") + "\n";
  await Deno.writeTextFile(config, text);
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const before = (await master.waitForChildren(2)).sort();
  await Deno.remove(config);
  await mkfifo(config);
  const at = master.logOffset();
  master.signal("SIGHUP");
  const refused = await master.waitForLog(/reload refused.*/, { after: at });
  assert(refused[0].includes("it is a FIFO, not a regular file"), refused[0]);
  assertEquals(master.children().sort(), before);
  assertEquals((await httpRequest(`http://127.0.0.1:${port}/`)).status, 200);
  // The loop did not hang on the FIFO: a fixed file reloads.
  await Deno.remove(config);
  await Deno.writeTextFile(config, text);
  master.signal("SIGHUP");
  await master.waitForLog(generationReady(2));
});
