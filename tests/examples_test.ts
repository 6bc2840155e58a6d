/**
 * The worker examples in `examples/<lang>/` run under the real master: each
 * whose runtime is installed starts from its own `app.toml` (bind replaced by
 * a free port with `-b`), answers `GET /` from its workers, and stops with
 * exit code 0 on TERM. A missing runtime skips its test with a message.
 */

import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { freePort, REPO_ROOT, startArbiter, waitForHttp } from "./_harness.ts";
import { buildGoExample, which } from "./_workers.ts";

interface Example {
  lang: string;
  /** The program the example needs. */
  runtime: string;
  /** Builds the example, if needed, and returns a command that replaces the file's. */
  build?: (tmp: string) => Promise<string[]>;
}

const EXAMPLES: Example[] = [
  { lang: "node", runtime: "node" },
  { lang: "python", runtime: "python3" },
  { lang: "deno", runtime: "deno" },
  { lang: "ruby", runtime: "ruby" },
  {
    lang: "go",
    runtime: "go",
    build: buildGoExample,
  },
];

for (const example of EXAMPLES) {
  const missing = which(example.runtime) === undefined;
  Deno.test({
    name: `examples/${example.lang}: answers under arbiter and stops on TERM` +
      (missing ? ` (skipped: ${example.runtime} is not installed)` : ""),
    ignore: missing,
    async fn() {
      const tmp = await Deno.makeTempDir({ prefix: `arbiter-example-${example.lang}-` });
      try {
        const command = example.build ? ["--", ...await example.build(tmp)] : [];
        const port = freePort();
        await using arbiter = startArbiter([
          "--config",
          `examples/${example.lang}/app.toml`,
          "-b",
          `127.0.0.1:${port}`,
          ...command,
        ], { cwd: REPO_ROOT });
        await arbiter.waitForChildren(2, { timeoutMs: 20_000 });
        // The examples use `ready = "notify"`: this proves their READY=1 arrives.
        await arbiter.waitForEvent("generation.ready", undefined, { timeoutMs: 20_000 });
        // Both workers answer (new connection each time; the kernel picks one).
        const seen = new Set<string>();
        for (let i = 0; i < 50 && seen.size < 2; i++) {
          const res = await waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 20_000 });
          match(res.text, new RegExp(`^hello from ${example.lang} worker [01]\\n$`));
          seen.add(res.text);
        }
        arbiter.signal("SIGTERM");
        const status = await arbiter.waitExit(20_000);
        assertEquals(status.code, 0, arbiter.stderr());
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    },
  });
}
