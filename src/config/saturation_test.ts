import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { keyPath } from "./_format.ts";
import { assertConfigErrorAsync } from "./_testing.ts";
import { formatConfig, loadConfig } from "./load.ts";
import { saturationConfig } from "./saturation.ts";
import { configSchema, MAX_MEMORY_MIB, parseMemoryMib } from "./schema.ts";

async function load(toml: string) {
  const dir = await Deno.makeTempDir({ prefix: "arbiter_saturation_test_" });
  try {
    await Deno.writeTextFile(join(dir, "app.toml"), `command = ["./app"]\n${toml}`);
    return await loadConfig({ configPath: "app.toml", overrides: {} }, {}, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const name = (path: readonly PropertyKey[]) => `app.toml: ${path.join(".")}`;

Deno.test("max_worker_memory: MiB as a number, or a size with a binary unit", () => {
  for (
    const [value, mib] of [
      [512, 512],
      [0, 0],
      [1.5, 1.5],
      ["512MB", 512],
      ["512M", 512],
      ["512MiB", 512],
      ["512 mb", 512],
      ["1.5G", 1536],
      ["2GiB", 2048],
      ["1T", MAX_MEMORY_MIB],
      ["2048K", 2],
      ["0M", 0],
    ] as const
  ) {
    strictEqual(configSchema.safeParse({ max_worker_memory: value }).success, true, String(value));
    strictEqual(parseMemoryMib(value), mib, String(value));
  }
  for (const bad of [-1, 0.5, MAX_MEMORY_MIB + 1, "512", "lots", "512KB0", "1.5P", "100K", true]) {
    strictEqual(configSchema.safeParse({ max_worker_memory: bad }).success, false, String(bad));
  }
});

Deno.test("saturation defaults: off, with a 10 s window; autoscale off", () => {
  const v = configSchema.parse({});
  deepStrictEqual(saturationConfig(v, name, keyPath, 4), {
    workers: 1,
    max_worker_memory: 0,
    max_worker_memory_window: 10,
    autoscale: false,
    workers_min: undefined,
    workers_max: undefined,
    autoscale_interval: 1,
    autoscale_quiet_period: 30,
  });
});

Deno.test("autoscale on: bounds default to 1 and twice the CPUs (never below workers)", () => {
  const on = (extra: Record<string, unknown>, cpus = 4) =>
    saturationConfig(configSchema.parse({ autoscale: true, ...extra }), name, keyPath, cpus);
  deepStrictEqual(
    [on({}).workers_min, on({}).workers_max, on({}).workers],
    [1, 8, 1],
  );
  strictEqual(on({ workers: 12 }).workers_max, 12);
  // workers is the starting count, brought within the bounds.
  strictEqual(on({ workers: 1, workers_min: 3 }).workers, 3);
  strictEqual(on({ workers: 20, workers_max: 6 }).workers, 6);
  strictEqual(on({ workers_min: 9 }, 2).workers_max, 9);
});

Deno.test("workers_min above workers_max is an error naming both keys, the file once", async () => {
  await assertConfigErrorAsync(
    load("autoscale = true\nworkers_min = 5\nworkers_max = 4\n"),
    "app.toml: workers_min: 5 is above workers_max (4); expected workers_min ≤ workers_max",
  );
});

Deno.test("ranges: windows, intervals and bounds outside theirs are errors naming the key", async () => {
  for (
    const [toml, key, expected] of [
      ["max_worker_memory_window = -1", "max_worker_memory_window", "from 0 to 3600"],
      ["autoscale_interval = 0", "autoscale_interval", "from 0.1 to 60"],
      ["autoscale_quiet_period = 0.5", "autoscale_quiet_period", "from 1 to 86400"],
      ["workers_max = 0", "workers_max", "from 1 to 10000"],
      ['max_worker_memory = "lots"', "max_worker_memory", "expected 0 (off)"],
      ["autoscale = 1", "autoscale", "expected true or false"],
    ] as const
  ) {
    await assertConfigErrorAsync(load(toml), key, expected);
  }
});

Deno.test("--check-config output of the saturation keys loads back the same", async () => {
  const config = await load(
    'max_worker_memory = "1.5G"\nmax_worker_memory_window = 20\nautoscale = true\n' +
      "workers = 2\nworkers_min = 2\nworkers_max = 9\nautoscale_interval = 0.5\n" +
      "autoscale_quiet_period = 60\n",
  );
  strictEqual(config.max_worker_memory, 1536);
  const text = formatConfig(config);
  // Without the keys naming the (now removed) first directory.
  const back = await load(text.replace(/^(command|chdir) = .*\n/gm, ""));
  for (
    const key of [
      "workers",
      "max_worker_memory",
      "max_worker_memory_window",
      "autoscale",
      "workers_min",
      "workers_max",
      "autoscale_interval",
      "autoscale_quiet_period",
    ] as const
  ) {
    strictEqual(back[key], config[key], key);
  }
});
