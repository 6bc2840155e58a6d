import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseBind } from "../config/bind.ts";
import { openListener } from "../sockets/listeners.ts";
import { SaturationSampler } from "./sampler.ts";

Deno.test("SaturationSampler: queued connections over all listeners, and a live process's usage", async () => {
  const a = await openListener(parseBind("127.0.0.1:0", "/"), { backlog: 10 });
  const dir = await Deno.makeTempDir();
  const b = await openListener(parseBind(`unix:${dir}/s.sock`, "/"), { backlog: 10 });
  const child = new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
  const sampler = new SaturationSampler(() => [a, b]);
  const conns: Deno.Conn[] = [];
  try {
    const port = Number(a.address.split(":").pop());
    conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    conns.push(await Deno.connect({ transport: "unix", path: `${dir}/s.sock` }));
    const unixReadable = sampler.queues().length === 2;
    const expected = unixReadable ? 2 : 1;
    const deadline = performance.now() + 5000;
    while (sampler.queued() < expected && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assertEquals(sampler.queued(), expected);
    const usage = sampler.workers([
      { serial: 7, pid: child.pid, spawnedAt: performance.now() - 1000 },
      { serial: 8, pid: 999_999_999, spawnedAt: 0 },
    ], performance.now());
    assertEquals(usage.map((u) => [u.serial, u.pid]), [[7, child.pid]]);
    assert(usage[0].rssBytes > 0 && usage[0].cpuPercent >= 0);
  } finally {
    for (const c of conns) c.close();
    child.kill("SIGKILL");
    await child.status;
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
});
