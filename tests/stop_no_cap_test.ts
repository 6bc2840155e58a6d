/**
 * A stop by a master that lacks CAP_NET_ADMIN (docs/stopping.md, "Without
 * CAP_NET_ADMIN"): the kernel refuses it the handshake filter, so it shrinks
 * the accept queues instead. Under closed-loop new-connection load, TERM
 * resets about one accepted connection per listener (two when handshakes
 * race on two CPUs: {@link SHRUNK_QUEUE_RESETS}), and the master says what it
 * fell back to. The master runs as root with CAP_NET_ADMIN removed
 * from its bounding set (`setpriv`), so nothing else about it changes.
 *
 * The workers are ones that do not close a connection the moment they accept
 * it at SIGTERM (the Python worker answers it; the worker helper waits for
 * its request): one that does, like tests/workers/deno_http.ts, loses the
 * connection it accepted last as well, since without the filter new ones
 * keep arriving until the end.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  arbiterArgv,
  freePort,
  logEvent,
  REPO_ROOT,
  startArbiter,
  waitForHttp,
} from "./_harness.ts";
import { generationReady, PY_WORKER, startServing } from "./_workers.ts";
import { SHRUNK_QUEUE_RESETS, StopLoad } from "./_stop_load.ts";

const WITHOUT_NET_ADMIN = ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"];

/** Why the test cannot run here, if it cannot. */
function skipReason(): string | undefined {
  if (Deno.uid() !== 0) return "needs root to drop CAP_NET_ADMIN from a bounding set";
  try {
    const r = new Deno.Command(WITHOUT_NET_ADMIN[0], { args: ["--version"] }).outputSync();
    return r.success ? undefined : "setpriv does not run";
  } catch {
    return "setpriv (util-linux) is not installed";
  }
}
const skip = skipReason();

/** The Deno example: its worker helper waits before closing a connection with no request yet. */
async function startDenoExample(port: number, cmd: string[]) {
  const path = `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`;
  const master = startArbiter(
    ["--config", `${REPO_ROOT}/examples/deno/app.toml`, "-b", `127.0.0.1:${port}`],
    { env: { PATH: path }, cmd },
  );
  await master.waitForLog(generationReady(1), { timeoutMs: 30_000 });
  await waitForHttp(`http://127.0.0.1:${port}/`);
  return master;
}

const WORKERS = [
  ["Python worker", (port: number, cmd: string[]) => startServing(PY_WORKER, { port, cmd })],
  ["examples/deno", startDenoExample],
] as const;

for (const [name, start] of WORKERS) {
  Deno.test({
    name: `${skip ? `[skipped: ${skip}] ` : ""}without CAP_NET_ADMIN, TERM under new-connection ` +
      `load resets about one accepted connection per listener (${name})`,
    ignore: skip !== undefined,
    fn: async () => {
      const port = freePort();
      await using master = await start(port, [...WITHOUT_NET_ADMIN, ...arbiterArgv()]);
      const load = new StopLoad({ port, connection: "close", concurrency: 8 });
      await load.answered(200);
      master.signal("SIGTERM");
      assertEquals((await master.waitExit(30_000)).code, 0, master.stderr());
      const result = await load.done();
      const stderr = master.stderr();
      if (logEvent("stop.handshakes_limited").test(stderr)) {
        assert(/Operation not permitted/.test(stderr), stderr);
        assert(
          result.lost <= SHRUNK_QUEUE_RESETS,
          `${result.lost} lost after connecting: ${result.errors}`,
        );
        console.log(`${name}: ${result.lost} reset, ${result.answered} answered`);
      } else {
        // A kernel that lets any process filter a TCP socket: the full guarantee.
        assert(!logEvent("stop.handshakes_failed").test(stderr), stderr);
        assertEquals(result.lost, 0, `lost after connecting: ${result.errors}`);
      }
      assert(result.answered >= 200 && result.refused > 0, "the stop met live clients");
    },
  });
}
