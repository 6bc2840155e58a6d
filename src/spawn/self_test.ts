// Self-invocation in both forms: a `deno compile`d binary re-invokes itself;
// `deno run` re-invokes deno with the flags, config and module. The compiled
// form is exercised for real with a stand-in executable (a script that, like
// the binary, needs no module argument), since `deno compile` cannot download
// its runtime on these machines.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { EXEC_MODE_ARG, EXEC_SPEC_ENV, type ExecSpec } from "./exec_shim.ts";
import { RUN_FLAGS, selfInvocation } from "./self.ts";
import { spawnWorker } from "./spawner.ts";

const MAIN = new URL("../../main.ts", import.meta.url);
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

Deno.test("compiled form: the binary itself, no module, no flags", () => {
  const self = selfInvocation("/usr/local/bin/arbiter", "file:///tmp/deno-compile-arbiter/main.ts");
  assertEquals(self, { executable: "/usr/local/bin/arbiter", args: [], compiled: true });
});

Deno.test("deno run form: deno with the run flags, the project config and the module", () => {
  const self = selfInvocation("/usr/bin/deno", MAIN.href);
  assertEquals(self.compiled, false);
  assertEquals(self.executable, "/usr/bin/deno");
  assertEquals(self.args, [...RUN_FLAGS, "--config", CONFIG, MAIN.href]);
  assert(RUN_FLAGS.includes("--unstable-net"), "notify sockets need --unstable-net");
});

async function runShim(executable: string, args: string[]): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const out = `${dir}/out`;
    const spec: ExecSpec = {
      program: "/bin/sh",
      argv: ["sh", "-c", `echo "$0 $ARBITER_WORKER_ID $WATCHDOG_PID" > ${out}`],
      env: { ARBITER_WORKER_ID: "7", PATH: "/usr/bin:/bin" },
      pidEnv: ["WATCHDOG_PID"],
      fds: [],
      masterPid: Deno.pid,
    };
    const child = spawnWorker({ executable, args, compiled: args.length === 0 }, {
      spec,
      shimEnv: Deno.env.toObject(),
      output: "inherit",
      stdin: "null",
    });
    const status = await child.status;
    assertEquals(status.code, 0);
    const [argv0, id, watchdogPid] = (await Deno.readTextFile(out)).trim().split(" ");
    assertEquals([argv0, id, watchdogPid], ["sh", "7", String(child.pid)], "exec kept the pid");
    return argv0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("exec shim through the deno run form", async () => {
  const self = selfInvocation(Deno.execPath(), MAIN.href);
  await runShim(self.executable, self.args);
});

Deno.test("exec shim through a compiled-form executable (re-invoked with no module)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Stands in for ./arbiter: all of its arguments are the program's own.
    const binary = `${dir}/arbiter`;
    const self = selfInvocation(Deno.execPath(), MAIN.href);
    await Deno.writeTextFile(
      binary,
      `#!/bin/sh\nexec ${[self.executable, ...self.args].map((a) => `'${a}'`).join(" ")} "$@"\n`,
      { mode: 0o755 },
    );
    const compiled = selfInvocation(binary, "file:///tmp/deno-compile-arbiter/main.ts");
    assertEquals(compiled.args, []);
    await runShim(compiled.executable, compiled.args);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the exec mode refuses to run without a spec", async () => {
  const self = selfInvocation(Deno.execPath(), MAIN.href);
  const env = Deno.env.toObject();
  delete env[EXEC_SPEC_ENV];
  const out = await new Deno.Command(self.executable, {
    args: [...self.args, EXEC_MODE_ARG],
    env,
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 126);
  assert(new TextDecoder().decode(out.stderr).includes("internal to arbiter"));
});
