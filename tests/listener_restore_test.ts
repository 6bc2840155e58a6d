// A listener that stops listening is noticed and restored: a worker's
// shutdown(SHUT_RDWR) on the shared socket, and the app serves again on its own.
import { ok as assert } from "node:assert/strict";
import {
  freePort,
  httpRequest,
  startArbiter,
  waitFor,
  waitForHttp,
  WORKERS_DIR,
} from "./_harness.ts";
import { generationReady, tempDir } from "./_workers.ts";

const SHUTDOWN_WORKER = ["python3", `${WORKERS_DIR}/shutdown_worker.py`];

Deno.test("a worker shuts the shared socket down: logged, counted, restored, serving again", async () => {
  const port = freePort();
  const metrics = `127.0.0.1:${freePort()}`;
  await using dir = await tempDir();
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    `command = ${JSON.stringify(SHUTDOWN_WORKER)}\nworkers = 2\n` +
      `bind = "127.0.0.1:${port}"\nmetrics_bind = "${metrics}"\n`,
  );
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
  await waitForHttp(`http://127.0.0.1:${port}/`);
  const at = master.logOffset();
  await httpRequest(`http://127.0.0.1:${port}/shutdown-socket`);
  await master.waitForLog(/listener 127\.0\.0\.1:\d+ stopped listening .* opened a fresh one/, {
    after: at,
  });
  await master.waitForLog(/replacing \d worker\(s\) so they accept on the fresh socket/, {
    after: at,
  });
  // Served again without an operator.
  await waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 15_000 });
  const text = await waitFor(async () => {
    const body = await (await fetch(`http://${metrics}/metrics`)).text();
    return /^arbiter_listener_restores_total 1$/m.test(body) && body;
  });
  assert(text);
  for (let i = 0; i < 5; i++) {
    assert((await httpRequest(`http://127.0.0.1:${port}/`)).status === 200);
  }
});
