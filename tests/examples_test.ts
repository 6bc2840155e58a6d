/**
 * The worker examples in `examples/<lang>/` run under the real master: each
 * whose runtime is installed starts from its own `app.toml` (bind replaced by
 * a free port with `-b`), answers `GET /` from its workers, and stops with
 * exit code 0 on TERM; and on INT (a quick stop: the workers get
 * `quick_stop_signal`, INT) each exits on its own within the short grace,
 * with no SIGKILL needed and no stack dump. A missing runtime skips its test
 * with a message.
 */

import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { freePort, logEvent, REPO_ROOT, startArbiter, waitForHttp } from "./_harness.ts";
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
  for (const stop of ["SIGTERM", "SIGINT"] as const) {
    const missing = which(example.runtime) === undefined;
    const how = stop === "SIGTERM" ? "stops on TERM" : "stops quickly and cleanly on INT";
    Deno.test({
      name: `examples/${example.lang}: answers under arbiter and ${how}` +
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
          arbiter.signal(stop);
          const status = await arbiter.waitExit(20_000);
          assertEquals(status.code, 0, arbiter.stderr());
          if (stop === "SIGINT") {
            const log = arbiter.stderr() + arbiter.stdout();
            assert(
              !logEvent("worker.killed").test(arbiter.stderr()),
              `a worker needed SIGKILL:\n${log}`,
            );
            assert(!/goroutine \d+|Full thread dump/.test(log), `a stack dump:\n${log}`);
          }
        } finally {
          await Deno.remove(tmp, { recursive: true });
        }
      },
    });
  }
}
