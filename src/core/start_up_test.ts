// The listeners at start-up: released at once, unless workers of the image
// before an in-place upgrade live (then at their generation's retirement).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import type { Effect } from "./events.ts";
import { type Ctx, Sim } from "./_testing.ts";

const releases = (effects: Effect<Ctx>[]) =>
  effects.filter((e) => e.type === "release-listeners" || e.type === "retire-generation")
    .map((e) => e.type);

Deno.test("start-up: the first step releases the listeners before it spawns", () => {
  const sim = new Sim();
  const types = sim.effects.map((e) => e.type).filter((t) => t !== "log");
  assertEquals(types[0], "release-listeners");
  assertEquals(types.filter((t) => t === "spawn").length, 2);
});

Deno.test("start-up with inherited workers: the listeners stay until their generation retires", () => {
  const sim = new Sim(undefined, undefined, {
    inherited: { generation: 4, workers: [{ pid: 50, slot: 0 }, { pid: 51, slot: 1 }] },
  });
  sim.adoptInherited();
  assertEquals(releases(sim.effects), [], "old workers may accept on any handed-over socket");
  sim.advance(1_000); // the new generation is ready; the inherited workers are told to stop
  sim.exit(50);
  assertEquals(releases(sim.effects), []);
  sim.exit(51);
  assertEquals(releases(sim.effects), ["retire-generation"]);
});
