/**
 * Saturation (docs/saturation.md): the idle master's wake-ups, CPU and RSS with the saturation
 * features off, with `max_worker_memory` on (RSS read every 5 s at the
 * default window) and with `autoscale` on (accept queue read every
 * `autoscale_interval`, 1 s by default). Two `sleep infinity` workers, no
 * traffic, the same reading as the footprint benchmark (voluntary context
 * switches of all the master's threads per second).
 *
 *   deno run -A scripts/bench/idle_sampling.ts [seconds per variant, default 30]
 *
 * Prints a markdown table for BENCHMARKS.md.
 *
 * @module
 */

import { idleReading } from "./footprint.ts";
import { freePort, sleep, startArbiter } from "./lib.ts";

const VARIANTS = [
  { name: "both off (default)", toml: "" },
  { name: "max_worker_memory = 512 (window 10 s)", toml: "max_worker_memory = 512\n" },
  {
    name: "autoscale = true (interval 1 s)",
    toml: "autoscale = true\nworkers_min = 2\nworkers_max = 4\n",
  },
  {
    name: "both on",
    toml: "max_worker_memory = 512\nautoscale = true\nworkers_min = 2\nworkers_max = 4\n",
  },
];

if (import.meta.main) {
  const seconds = Number(Deno.args[0] ?? 30);
  const rows = [
    "| saturation features | window | RSS start → end | CPU | wake-ups/s (all threads) |",
    "| --- | --: | --- | --: | --: |",
  ];
  for (const v of VARIANTS) {
    const dir = await Deno.makeTempDir({ prefix: "arbiter-bench-idle-" });
    await Deno.writeTextFile(
      `${dir}/app.toml`,
      `command = ["sleep", "infinity"]\nworkers = 2\nbind = "127.0.0.1:${freePort()}"\n${v.toml}`,
    );
    const p = startArbiter(["--config", `${dir}/app.toml`]);
    try {
      await p.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
      await sleep(2000);
      const r = await idleReading(p.pid, seconds);
      rows.push(
        `| ${v.name} | ${seconds} s | ${r.rss0} → ${r.rss1} kB | ${r.cpuPct.toFixed(3)} % | ` +
          `${r.wakeups.toFixed(2)} |`,
      );
      p.signal("SIGTERM");
      await p.waitExit(20_000).catch(() => {});
    } finally {
      await p[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  }
  console.log(rows.join("\n"));
}
