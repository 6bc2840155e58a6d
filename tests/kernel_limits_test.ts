// The check refuses what the kernel will: sizes past ARG_MAX / MAX_ARG_STRLEN,
// NUL bytes, and two binds that are one address — exit 2, naming the key,
// before anything is bound or written.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, startArbiter } from "./_harness.ts";
import { PY_WORKER, tempDir } from "./_workers.ts";

const CASES: { name: string; toml: (port: number) => string; expect: RegExp }[] = [
  {
    name: "a 200 KB env value",
    toml: () => `[env]\nBIG = "${"x".repeat(200_000)}"\n`,
    expect: /env\.BIG: 200005 bytes; one argument or KEY=value may be at most 131072/,
  },
  {
    name: "env values over the hand-over limit together",
    toml: () => `[env]\n${[0, 1, 2].map((i) => `V${i} = "${"y".repeat(50_000)}"`).join("\n")}\n`,
    expect: /command and env: about \d+ bytes together; .* the largest is env\.V\d/,
  },
  {
    name: "a NUL byte in an argument",
    toml: () => "",
    expect: /command\[2\]: contains a NUL byte/,
  },
  {
    name: "a NUL byte in an env value",
    toml: () => `[env]\nA = "a\\u0000b"\n`,
    expect: /env\.A: contains a NUL byte/,
  },
  {
    name: "127.0.0.1:P and localhost:P",
    toml: (port) => `bind = ["127.0.0.1:${port}", "localhost:${port}"]\n`,
    expect: /bind: "localhost:\d+" and "127\.0\.0\.1:\d+" both take 127\.0\.0\.1:\d+/,
  },
  {
    name: "0.0.0.0:P and 127.0.0.1:P",
    toml: (port) => `bind = ["0.0.0.0:${port}", "127.0.0.1:${port}"]\n`,
    expect: /both take 127\.0\.0\.1:\d+ \(a wildcard address/,
  },
];

for (const c of CASES) {
  for (const mode of ["--check-config", "start"]) {
    Deno.test(`${mode}: ${c.name} is refused with exit 2, naming the key`, async () => {
      await using dir = await tempDir();
      const port = freePort();
      const command = c.name.includes("NUL byte in an argument")
        ? [...PY_WORKER, "bad\u0000arg"]
        : PY_WORKER;
      const pidfile = `${dir.path}/arbiter.pid`;
      const config = `${dir.path}/app.toml`;
      let toml = c.toml(port);
      if (!toml.includes("bind =")) toml = `bind = "127.0.0.1:${port}"\n` + toml;
      await Deno.writeTextFile(
        config,
        `command = ${JSON.stringify(command)}\npidfile = "${pidfile}"\n` + toml,
      );
      const args = ["--config", config, ...(mode === "start" ? [] : ["--check-config"])];
      await using master = startArbiter(args);
      const status = await master.waitExit();
      assertEquals(status.code, 2, master.stderr());
      assert(c.expect.test(master.stderr()), master.stderr());
      assert(!(await Deno.stat(pidfile).then(() => true, () => false)), "nothing written");
    });
  }
}
