/**
 * Every worker the project ships drains without failing a request: each runs
 * under the real master (from its own `app.toml`, on a free port) while two
 * load generators speak raw HTTP/1.1 to it — one with `Connection: close` (a
 * new connection per request), one with keep-alive connections — and the
 * master is HUPed several times; every refused connect, reset, short read,
 * timeout or non-2xx answer counts as a failure, and there must be none.
 * Then, with the clients gone quiet (an idle keep-alive connection and a
 * connection that never sent a request left open), a HUP must still retire
 * the old workers well within graceful_timeout, closing those connections
 * cleanly. A missing runtime skips its worker with a message.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  freePort,
  isAlive,
  isWorkerProgram,
  LoadGenerator,
  REPO_ROOT,
  startArbiter,
  waitFor,
  waitForHttp,
} from "./_harness.ts";
import { Http1Connection } from "./_http1.ts";
import { buildGoExample, generationReady, reloadGenerations, which } from "./_workers.ts";

/** The directory of this Deno, so workers that run `deno` find the same one. */
const DENO_DIR = Deno.execPath().replace(/\/[^/]*$/, "");

/** HUPs under load per worker. */
const HUPS = 4;
/** Loops per load generator (one per connection mode). */
const CONCURRENCY = 4;
/**
 * From HUP (the new generation starts, is ready, then the old one gets TERM):
 * by when an idle keep-alive connection must be closed...
 */
const IDLE_CLOSE_MAX_MS = 4_000;
/**
 * ...and by when the old workers must be gone: each closes a connection that
 * stays silent for 1 s (measured here: 1.1–2.6 s from HUP, the new
 * generation's start included); the examples' graceful_timeout is 10 s.
 */
const QUIET_DRAIN_MAX_MS = 6_000;

/** The directory holding the running `deno`, put first on PATH so `deno` in a config is it. */

interface Shipped {
  name: string;
  /** Its `app.toml`, relative to the repository. */
  config: string;
  /** The program it needs. */
  runtime: string;
  /** Builds it, if needed, and returns a command that replaces the file's. */
  build?: (tmp: string) => Promise<string[]>;
}

const SHIPPED: Shipped[] = [
  { name: "examples/hello.ts (the quick start)", config: "examples/app.toml", runtime: "deno" },
  { name: "examples/deno", config: "examples/deno/app.toml", runtime: "deno" },
  { name: "examples/node", config: "examples/node/app.toml", runtime: "node" },
  { name: "examples/python", config: "examples/python/app.toml", runtime: "python3" },
  { name: "examples/ruby", config: "examples/ruby/app.toml", runtime: "ruby" },
  {
    name: "examples/go",
    config: "examples/go/app.toml",
    runtime: "go",
    build: buildGoExample,
  },
];

for (const worker of SHIPPED) {
  const missing = which(worker.runtime) === undefined;
  Deno.test({
    name: `${worker.name}: ${HUPS} HUPs under close and keep-alive load fail nothing; ` +
      `a quiet drain is quick` + (missing ? ` (skipped: ${worker.runtime} is not installed)` : ""),
    ignore: missing,
    async fn() {
      const tmp = await Deno.makeTempDir({ prefix: "arbiter-drain-" });
      try {
        await checkDrain(worker, tmp);
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    },
  });
}

async function checkDrain(worker: Shipped, tmp: string): Promise<void> {
  const command = worker.build ? ["--", ...await worker.build(tmp)] : [];
  const port = freePort();
  const url = `http://127.0.0.1:${port}/`;
  await using arbiter = startArbiter(
    ["--config", worker.config, "-b", `127.0.0.1:${port}`, "-w", "2", ...command],
    {
      cwd: REPO_ROOT,
      env: { PATH: `${DENO_DIR}:${Deno.env.get("PATH") ?? ""}` },
    },
  );
  await arbiter.waitForLog(generationReady(1), { timeoutMs: 30_000 });
  await waitForHttp(url, { timeoutMs: 20_000 });

  const close = new LoadGenerator().start(url, { connection: "close", concurrency: CONCURRENCY });
  const keep = new LoadGenerator().start(url, {
    connection: "keep-alive",
    concurrency: CONCURRENCY,
  });
  try {
    await reloadGenerations(arbiter, HUPS);
  } finally {
    const results = await Promise.all([close.stop(), keep.stop()]);
    for (const [mode, r] of [["Connection: close", results[0]], ["keep-alive", results[1]]]) {
      const result = r as typeof results[0];
      assertEquals(
        result.failed,
        0,
        `${mode}: ${result.failed} of ${result.ok + result.failed} failed:\n` +
          result.errors.join("\n"),
      );
      assert(result.ok > 20, `${mode}: only ${result.ok} requests went through`);
    }
  }

  // Clients go quiet: a keep-alive connection that was answered and left open
  // (as client pools keep them), and a spare connection that never sent a
  // request (as proxies keep them).
  const idle = await Http1Connection.open("127.0.0.1", port);
  const spare = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    assertEquals((await idle.request("/", `127.0.0.1:${port}`, false)).status, 200);
    const old = arbiter.children().filter(isWorkerProgram);
    const started = performance.now();
    arbiter.signal("SIGHUP");
    // The idle connection is closed cleanly within a grace of about a second after TERM.
    const idleClosed = await idle.closedByServer();
    const idleMs = performance.now() - started;
    assertEquals(idleClosed, "eof", "the idle keep-alive connection was not closed cleanly");
    assert(idleMs < IDLE_CLOSE_MAX_MS, `the idle connection was closed only after ${idleMs} ms`);
    await waitFor(() => old.every((pid) => !isAlive(pid)), {
      timeoutMs: QUIET_DRAIN_MAX_MS,
      message: `the old workers to drain with quiet clients within ${QUIET_DRAIN_MAX_MS} ms`,
    });
    const drainMs = performance.now() - started;
    // The spare connection was closed cleanly (or went to a new worker, which keeps it).
    await assertClosedOrOpen(spare);
    console.log(
      `${worker.name}: idle connection closed after ${Math.round(idleMs)} ms, ` +
        `old workers gone after ${Math.round(drainMs)} ms (HUP to exit)`,
    );
  } finally {
    idle.close();
    spare.close();
  }
}

/** The connection is closed with a FIN, or still open; never reset. */
async function assertClosedOrOpen(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(1);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = new Promise<"open">((r) => timer = setTimeout(() => r("open"), 200));
  try {
    // The read settles later, when the test closes the connection: never rejects.
    const read = conn.read(buf).then(
      (n) => n === null ? "eof" : "data",
      (err) => `error: ${err}`,
    );
    const outcome = await Promise.race([read, open]);
    assert(outcome === "eof" || outcome === "open", `spare connection: ${outcome}`);
  } finally {
    clearTimeout(timer);
  }
}
