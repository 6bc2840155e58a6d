import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Config } from "../config/types.ts";
import {
  SaturationPolicy,
  type SaturationSettings,
  saturationSettingsOf,
} from "./saturation_policy.ts";

const MiB = 1024 * 1024;
const OFF: SaturationSettings = { memory: { limitBytes: 0, windowMs: 10_000 } };
const BOTH: SaturationSettings = {
  autoscale: { min: 2, max: 8, intervalMs: 1000, quietMs: 30_000 },
  memory: { limitBytes: 100 * MiB, windowMs: 10_000 },
};

Deno.test("both features off: no sample is ever due (no extra wake-up)", () => {
  const policy = new SaturationPolicy(OFF, 0);
  assertEquals(policy.nextSampleAt(), undefined);
  assertEquals(policy.due(1_000_000), { queue: false, memory: false });
  assertEquals(policy.bounds, undefined);
  assertEquals(policy.queueSample(0, 50, 1, 1), undefined);
  assertEquals(policy.manual(0, 0), 1);
  assertEquals(policy.manual(7, 0), 7);
});

Deno.test("the queue every interval, RSS every 5 s; a late deadline does not burst", () => {
  const policy = new SaturationPolicy(BOTH, 0);
  assertEquals(policy.nextSampleAt(), 1000);
  assertEquals(policy.due(999), { queue: false, memory: false });
  // (The first RSS sample is due at 5 s.)
  assertEquals(policy.due(1000), { queue: true, memory: false });
  assertEquals(policy.nextSampleAt(), 2000);
  // The loop was busy until 7.5 s: one sample of each, then on from there.
  assertEquals(policy.due(7500), { queue: true, memory: true });
  assertEquals(policy.nextSampleAt(), 8500);
  assertEquals(policy.due(8500), { queue: true, memory: false });
  // Wake-ups over a quiet minute with both on: one per second (the queue);
  // the RSS samples ride along.
  let wakeups = 0;
  for (let t = 10_000; t < 70_000; t = policy.nextSampleAt()!) {
    policy.due(t);
    wakeups++;
  }
  assertEquals(wakeups, 60);
});

Deno.test("samples become decisions; manual changes stay within the bounds", () => {
  const policy = new SaturationPolicy(BOTH, 0);
  assertEquals(policy.bounds, { min: 2, max: 8 });
  assertEquals(policy.queueSample(1000, 3, 2, 2), undefined);
  assertEquals(policy.queueSample(2000, 3, 2, 2), undefined);
  assertEquals(policy.queueSample(3000, 3, 2, 2)?.workers, 5);
  assertEquals(policy.manual(20, 4000), 8);
  assertEquals(policy.manual(1, 4000), 2);
  assertEquals(policy.memorySample(0, [{ serial: 1, memoryBytes: 200 * MiB }]), []);
  assertEquals(policy.memorySample(10_000, [{ serial: 1, memoryBytes: 200 * MiB }]).length, 1);
  policy.forget(1);
  assertEquals(policy.memorySample(15_000, [{ serial: 1, memoryBytes: 200 * MiB }]), []);
});

Deno.test("a reload: new bounds clamp the current count; turning features on or off", () => {
  const policy = new SaturationPolicy(BOTH, 0);
  const narrower = { ...BOTH, autoscale: { ...BOTH.autoscale!, max: 4 } };
  assertEquals(policy.reconfigure(narrower, 100, 6, 3), 4, "current 6 within 2..4");
  assertEquals(policy.reconfigure(narrower, 200, 3, 9), 3, "unchanged bounds keep the count");
  assertEquals(policy.reconfigure(OFF, 300, 3, 9), 9, "autoscale off: the file's count");
  assertEquals(policy.nextSampleAt(), undefined);
  policy.reconfigure({ memory: BOTH.memory }, 400, 9, 9);
  assertEquals(policy.nextSampleAt(), 5400, "memory turned on by a reload is sampled");
});

Deno.test("max_worker_memory alone: one wake-up every 5 s with the default window", () => {
  const policy = new SaturationPolicy({ memory: BOTH.memory }, 0);
  let wakeups = 0;
  for (let t = policy.nextSampleAt()!; t <= 60_000; t = policy.nextSampleAt()!) {
    assertEquals(policy.due(t), { queue: false, memory: true });
    wakeups++;
  }
  assertEquals(wakeups, 12);
});

Deno.test("saturationSettingsOf: from the config's keys", () => {
  const config = {
    workers: 2,
    max_worker_memory: 0,
    max_worker_memory_window: 10,
    autoscale: false,
    autoscale_interval: 1,
    autoscale_quiet_period: 30,
  } as Config;
  assertEquals(saturationSettingsOf(config), OFF);
  assertEquals(
    saturationSettingsOf({ ...config, autoscale: true, workers_min: 2, workers_max: 8 }).autoscale,
    { min: 2, max: 8, intervalMs: 1000, quietMs: 30_000 },
  );
});
