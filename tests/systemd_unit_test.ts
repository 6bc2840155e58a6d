// examples/systemd/arbiter.service is right: `systemd-analyze verify` finds
// nothing in it, `systemd-analyze security` (offline, on the file) scores it at
// or below 4.0, and it reloads, upgrades and stops the way docs/deploying.md
// ("systemd") says.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { REPO_ROOT } from "./_harness.ts";
import { tempDir, which } from "./_workers.ts";

const UNIT_DIR = `${REPO_ROOT}/examples/systemd`;
const UNITS = ["arbiter.service", "arbiter.socket"];
/** The highest exposure `systemd-analyze security` may give the service. */
const MAX_EXPOSURE = 4.0;

const analyze = which("systemd-analyze");
const skip = analyze
  ? ""
  : "SKIPPED (systemd-analyze is not installed; .ci/run installs systemd): ";

async function run(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(analyze!, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

/**
 * The units in a temporary directory with the binary's path pointed at a
 * stand-in (verify checks that ExecStart= and ExecReload= are executable);
 * nothing else changes.
 */
async function unitsWithStandIn(dir: string): Promise<string[]> {
  const bin = `${dir}/arbiter`;
  await Deno.writeTextFile(bin, "#!/bin/sh\n", { mode: 0o755 });
  return await Promise.all(UNITS.map(async (name) => {
    const text = await Deno.readTextFile(`${UNIT_DIR}/${name}`);
    await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("/usr/local/bin/arbiter", bin));
    return `${dir}/${name}`;
  }));
}

Deno.test({
  name: `${skip}systemd-analyze verify finds nothing in the service and socket units`,
  ignore: !analyze,
  fn: async () => {
    await using dir = await tempDir();
    const r = await run(["verify", ...await unitsWithStandIn(dir.path)]);
    assertEquals([r.code, r.out.trim()], [0, ""]);
  },
});

Deno.test({
  name: `${skip}systemd-analyze security scores the service at or below ${MAX_EXPOSURE}`,
  ignore: !analyze,
  fn: async () => {
    const r = await run([
      "security",
      "--offline=true",
      `--threshold=${MAX_EXPOSURE * 10}`,
      `${UNIT_DIR}/arbiter.service`,
    ]);
    const score = /Overall exposure level for arbiter\.service: (\d+\.\d+)/.exec(r.out);
    assert(score, r.out);
    assert(Number(score[1]) <= MAX_EXPOSURE, `exposure ${score[1]}:\n${r.out}`);
    assertEquals(r.code, 0, r.out);
  },
});

Deno.test("the service reloads with ctl reload --wait, upgrades the main pid only, runs as a user", async () => {
  const unit = await Deno.readTextFile(`${UNIT_DIR}/arbiter.service`);
  const setting = (key: string) =>
    [...unit.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]);
  assertEquals(setting("Type"), ["notify"]); // systemd 252: notify-reload only as a comment
  assertEquals(setting("ExecReload"), [
    "/usr/local/bin/arbiter ctl --config /etc/arbiter/app.toml reload --wait",
  ]);
  // USR2 advice signals the main process only.
  for (const line of unit.split("\n").filter((l) => /kill .*USR2/.test(l))) {
    assert(line.includes("--kill-whom=main"), line);
  }
  assertEquals(setting("KillMode"), ["mixed"]);
  assertEquals(setting("User"), ["arbiter"]);
  assertEquals(setting("RuntimeDirectory"), ["arbiter"]);
  assertEquals(setting("NoNewPrivileges"), ["yes"]);
  assertEquals(setting("MemoryDenyWriteExecute"), [], "V8's JIT needs writable+executable memory");
});
