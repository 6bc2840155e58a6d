// The config check in a child: answers as loadConfig would, with its
// mistakes' messages unchanged, and every way the child can fail is one clear,
// bounded error (src/config/validate_child.ts).
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { ArbiterError, ConfigError } from "../errors.ts";
import { selfInvocation } from "../spawn/self.ts";
import { loadConfig } from "./load.ts";
import { validateInChild } from "./validate_child.ts";

const self = selfInvocation(Deno.execPath(), new URL("../../main.ts", import.meta.url).href);
const env = Deno.env.toObject();

async function withConfig<T>(text: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/app.toml`, text);
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("validateInChild answers with the config loadConfig gives", async () => {
  await withConfig('command = ["app"]\nworkers = 3\nbind = "127.0.0.1:0"\n', async (dir) => {
    const argv = ["--config", "app.toml", "-t", "5"];
    const got = await validateInChild({ argv, cwd: dir, inheritedFds: [] }, { self, env });
    const want = await loadConfig(
      { configPath: "app.toml", overrides: { timeout: 5 } },
      env,
      dir,
    );
    assertEquals(got, want);
  });
});

Deno.test("validateInChild: a config mistake is a ConfigError with loadConfig's message", async () => {
  await withConfig('command = ["app"]\nworkers = 0\n', async (dir) => {
    const request = { argv: ["--config", "app.toml"], cwd: dir, inheritedFds: [] };
    await rejects(validateInChild(request, { self, env }), (error) => {
      assert(error instanceof ConfigError);
      assertEquals(error.message, "app.toml: workers: expected an integer from 1 to 10000, got 0");
      return true;
    });
    const option = { argv: ["-w", "abc", "--", "app"], cwd: dir, inheritedFds: [] };
    await rejects(validateInChild(option, { self, env }), {
      message: '--workers: expected an integer from 1 to 10000, got "abc"',
    });
  });
});

Deno.test("validateInChild: a child that cannot start, hangs, or says too much is an error", async () => {
  const request = { argv: ["--", "app"], cwd: "/", inheritedFds: [] };
  const missing = { ...self, executable: "/nonexistent/arbiter" };
  await rejects(validateInChild(request, { self: missing, env }), (error) => {
    assert(error instanceof ArbiterError && !(error instanceof ConfigError));
    assert(/config check/.test(error.message), error.message);
    return true;
  });
  // Stand-ins for the child (spawnWorker runs `self` itself: no shim, no group of its own).
  const sleeper = { executable: "/bin/sh", args: ["-c", "exec sleep 30", "sh"], compiled: true };
  const limits = { timeoutMs: 300, maxAnswerBytes: 1 << 20, maxErrorBytes: 1 << 16 };
  await rejects(validateInChild(request, { self: sleeper, env, limits }), {
    message: /gave no answer within 0.3 s; stopped it/,
  });
  const chatty = { executable: "/bin/sh", args: ["-c", "yes", "sh"], compiled: true };
  await rejects(validateInChild(request, { self: chatty, env, limits }), {
    message: /answered with more than 1048576 bytes; stopped it/,
  });
  const garbled = { executable: "/bin/sh", args: ["-c", "echo '{'", "sh"], compiled: true };
  await rejects(validateInChild(request, { self: garbled, env, limits }), {
    message: /answered with unreadable JSON/,
  });
  const failing = { executable: "/bin/sh", args: ["-c", "echo boom >&2; exit 7", "sh"] };
  await rejects(
    validateInChild(request, { self: { ...failing, compiled: true }, env, limits }),
    { message: /exited with code 7: boom/ },
  );
});
