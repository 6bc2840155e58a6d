// The config file reader refuses what is not a small regular file, at once.
import { strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { assertConfigError } from "./_testing.ts";
import { MAX_CONFIG_BYTES, readConfigText } from "./config_file.ts";

async function inTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter_config_file_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readConfigText() reads a regular file, through a symlink too (ConfigMap)", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "real.toml"), 'command = ["x"]\n');
    await Deno.symlink(join(dir, "real.toml"), join(dir, "app.toml"));
    strictEqual(readConfigText(join(dir, "app.toml"), "app.toml"), 'command = ["x"]\n');
  });
});

Deno.test("readConfigText() refuses a FIFO at once instead of waiting for a writer", async () => {
  await inTempDir(async (dir) => {
    const fifo = join(dir, "app.toml");
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    strictEqual(made.code, 0);
    assertConfigError(
      () => readConfigText(fifo, "app.toml"),
      "app.toml: cannot read the config file: it is a FIFO, not a regular file",
    );
  });
});

Deno.test("readConfigText() refuses a device and a directory", async () => {
  assertConfigError(
    () => readConfigText("/dev/zero", "/dev/zero"),
    "/dev/zero: cannot read the config file: it is a character device, not a regular file",
  );
  await inTempDir((dir) => {
    assertConfigError(
      () => readConfigText(dir, "conf.d"),
      "conf.d: cannot read the config file: it is a directory, not a regular file",
    );
  });
});

Deno.test("readConfigText() refuses a file over the bound whole, and takes one at it", async () => {
  await inTempDir(async (dir) => {
    const path = join(dir, "app.toml");
    await Deno.writeTextFile(path, "#".repeat(MAX_CONFIG_BYTES));
    strictEqual(readConfigText(path, "app.toml").length, MAX_CONFIG_BYTES);
    await Deno.writeTextFile(path, "#", { append: true });
    assertConfigError(
      () => readConfigText(path, "app.toml"),
      `app.toml: cannot read the config file: it is larger than ${MAX_CONFIG_BYTES} bytes`,
    );
  });
});

Deno.test("readConfigText() names a missing file and text that is not UTF-8", async () => {
  await inTempDir(async (dir) => {
    assertConfigError(
      () => readConfigText(join(dir, "nope.toml"), "nope.toml"),
      "nope.toml: cannot read the config file: no such file or directory",
    );
    await Deno.writeFile(join(dir, "bin.toml"), new Uint8Array([0xff, 0xfe, 0x00]));
    assertConfigError(
      () => readConfigText(join(dir, "bin.toml"), "bin.toml"),
      "bin.toml: cannot read the config file: it is not UTF-8 text",
    );
  });
});
