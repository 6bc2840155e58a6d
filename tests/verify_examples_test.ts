/**
 * Every shipped worker passes `arbiter verify`: examples/hello.ts (the quick
 * start, via examples/app.toml) and the Node, Deno, Python, Go and Ruby
 * examples. Each whose runtime is installed runs in parallel with the others;
 * a missing runtime is skipped with a message.
 *
 * With `--reloads 2` and all six at once it takes about 50 s of wall time on
 * two busy cores. ARBITER_VERIFY_EXAMPLES=0 skips it (e.g. for a quick local
 * run of the suite).
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { REPO_ROOT, startArbiter } from "./_harness.ts";
import { buildGoExample, tempDir, which } from "./_workers.ts";

const ENABLED = Deno.env.get("ARBITER_VERIFY_EXAMPLES") !== "0";

interface Example {
  name: string;
  config: string;
  runtime: string;
  /** Builds the worker, if needed, and returns a command that replaces the file's. */
  build?: (dir: string) => Promise<string[]>;
}

const EXAMPLES: Example[] = [
  { name: "hello.ts (quick start)", config: "examples/app.toml", runtime: "deno" },
  { name: "deno", config: "examples/deno/app.toml", runtime: "deno" },
  { name: "node", config: "examples/node/app.toml", runtime: "node" },
  { name: "python", config: "examples/python/app.toml", runtime: "python3" },
  { name: "ruby", config: "examples/ruby/app.toml", runtime: "ruby" },
  {
    name: "go",
    config: "examples/go/app.toml",
    runtime: "go",
    build: buildGoExample,
  },
];

interface Row {
  id: string;
  status: string;
  evidence: string;
}

Deno.test({
  name: "every shipped worker passes arbiter verify" +
    (ENABLED ? "" : " (skipped: ARBITER_VERIFY_EXAMPLES=0)"),
  ignore: !ENABLED,
  async fn(t) {
    await using dir = await tempDir();
    const runs = EXAMPLES.filter((e) => which(e.runtime) !== undefined).map((example) => ({
      example,
      verdict: (async () => {
        const command = example.build ? ["--", ...await example.build(dir.path)] : [];
        await using run = startArbiter(
          ["verify", "--json", "--reloads", "2", "--config", example.config, ...command],
          { cwd: REPO_ROOT },
        );
        const status = await run.waitExit(240_000);
        return { code: status.code, stdout: run.stdout(), stderr: run.stderr() };
      })(),
    }));
    await Promise.allSettled(runs.map((r) => r.verdict));
    for (const { example, verdict } of runs) {
      await t.step(example.name, async () => {
        const v = await verdict;
        let checks: Row[] = [];
        try {
          checks = JSON.parse(v.stdout).checks;
        } catch {
          throw new Error(`${example.name}: no report (exit ${v.code}):\n${v.stderr}`);
        }
        const failed = checks
          .filter((c) => c.status === "fail")
          .map((c) => `${c.id}: ${c.evidence}`);
        assertEquals(failed, [], `${example.name} fails arbiter verify:\n${v.stderr}`);
        assertEquals(v.code, 0);
      });
    }
    for (const e of EXAMPLES.filter((e) => which(e.runtime) === undefined)) {
      console.log(`skipped ${e.name}: ${e.runtime} is not installed`);
    }
  },
});
