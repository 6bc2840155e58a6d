/**
 * The Deno worker helper (`serve()` in src/worker/mod.ts) under the real
 * master, on both transports: two workers sharing one socket, requests with
 * bodies and streaming answers, HUPs under strict load (raw HTTP/1.1, no
 * client retries) with keep-alive and with a new connection per request,
 * and a TERM drain with a request in flight.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { freePort, httpRequest, LoadGenerator, REPO_ROOT, waitFor } from "./_harness.ts";
import { generationReady, startServing } from "./_workers.ts";

const APP = `${REPO_ROOT}/src/worker/testdata/app.ts`;
const COMMAND = [Deno.execPath(), "run", "-A", "--quiet", APP];

for (const transport of ["native", "node"] as const) {
  const serveIt = (port: number) =>
    startServing(COMMAND, {
      workers: 2,
      port,
      args: ["--ready", "notify", "--graceful-timeout", "10"],
      env: { ARBITER_WORKER_TRANSPORT: transport },
    });

  Deno.test(`worker helper (${transport}): two workers share the socket; bodies and streams`, async () => {
    const port = freePort();
    await using master = await serveIt(port);
    const url = `http://127.0.0.1:${port}`;
    const seen = new Set<string>();
    await waitFor(async () => {
      const r = await httpRequest(`${url}/`);
      assertEquals(r.status, 200);
      seen.add(r.text);
      return seen.size === 2;
    }, { message: "both workers to answer", timeoutMs: 10_000 });
    assertEquals([...seen].sort(), ["hello from worker 0\n", "hello from worker 1\n"]);
    assertEquals(
      (master.stdout().match(new RegExp(`listening \\(${transport}\\)`, "g")) ?? []).length,
      2,
    );

    const body = "x".repeat(200_000);
    const echo = await fetch(`${url}/echo`, { method: "POST", body });
    assertEquals([echo.status, echo.headers.get("x-method"), await echo.text()], [
      200,
      "POST",
      body,
    ]);

    const stream = await fetch(`${url}/stream`);
    assertEquals(await stream.text(), "chunk 0\nchunk 1\nchunk 2\n");
  });

  Deno.test(`worker helper (${transport}): HUPs under keep-alive and new-connection load lose nothing`, async () => {
    const port = freePort();
    await using master = await serveIt(port);
    const url = `http://127.0.0.1:${port}/`;
    const keepAlive = new LoadGenerator().start(url, { concurrency: 4, connection: "keep-alive" });
    const fresh = new LoadGenerator().start(url, { concurrency: 4, connection: "close" });
    const first = master.children();
    for (const generation of [2, 3, 4]) {
      master.signal("SIGHUP");
      await master.waitForLog(generationReady(generation), { timeoutMs: 20_000 });
    }
    await waitFor(() => master.children().every((pid) => !first.includes(pid)), {
      message: "the first generation to be gone",
      timeoutMs: 15_000,
    });
    // Proof that both loads really flowed (a loaded machine may be slow, never failing).
    await waitFor(() => keepAlive.snapshot().ok > 50 && fresh.snapshot().ok > 50, {
      message: "50 requests in each mode",
    });
    const [ka, nc] = await Promise.all([keepAlive.stop(), fresh.stop()]);
    assertEquals(ka.failed, 0, `keep-alive: ${ka.errors.join("; ")}`);
    assertEquals(nc.failed, 0, `new connections: ${nc.errors.join("; ")}`);
    // Old workers told their keep-alive clients to go elsewhere.
    assert(ka.closedByServer > 0, "no Connection: close seen on keep-alive connections");
  });

  Deno.test(`worker helper (${transport}): TERM lets a request in flight finish, then exits 0`, async () => {
    const port = freePort();
    await using master = await serveIt(port);
    const slow = httpRequest(`http://127.0.0.1:${port}/slow?ms=1500`);
    await master.waitForLog("slow start", { stream: "stdout" });
    master.signal("SIGTERM");
    const res = await slow;
    assertEquals([res.status, res.text, res.headers.get("connection")], [
      200,
      "slow done\n",
      "close",
    ]);
    assertEquals((await master.waitExit(15_000)).code, 0);
    assertEquals((master.stdout().match(/finished/g) ?? []).length, 2);
  });
}
