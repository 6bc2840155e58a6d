import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseLine, WorkerBook } from "./master_log.ts";

const line = (event: string, props: Record<string, unknown> = {}, level = "info") =>
  JSON.stringify({ time: "2026-11-28T00:00:00.000Z", level, event, pid: 1, msg: "any", ...props });

Deno.test("parseLine reads the master's JSON log into events by name, not wording", () => {
  assertEquals(
    parseLine(line("worker.spawned", { worker: { id: 0, pid: 5, generation: 2 } })),
    { type: "started", id: 0, pid: 5, generation: 2 },
  );
  assertEquals(
    parseLine(line("worker.ready", { worker: { id: 0, pid: 5, generation: 2 }, why: "READY=1" })),
    { type: "ready", id: 0, pid: 5, why: "READY=1" },
  );
  assertEquals(
    parseLine(line("worker.exited", {
      worker: { id: 1, pid: 6, generation: 1 },
      how: "exited with code 0",
      reason: "x",
    })),
    { type: "exited", id: 1, pid: 6, how: "exited with code 0", reason: "x" },
  );
  assertEquals(
    parseLine(line("worker.watchdog_timeout", { worker: { id: 0, pid: 5 }, timeout: 3 }, "error")),
    { type: "watchdog", id: 0, pid: 5, timeout: 3 },
  );
  assertEquals(parseLine(line("generation.ready", { generation: 2, count: 2 })), {
    type: "generation-ready",
    generation: 2,
  });
  assertEquals(
    parseLine(
      line("stop.started", { quick: false, code: 0, reason: "SIGTERM: stopping gracefully" }),
    ),
    { type: "stopping", reason: "SIGTERM: stopping gracefully" },
  );
  assertEquals(parseLine(line("master.listening", {})), undefined);
  assertEquals(parseLine(line("hook.failed", {}, "error")), {
    type: "problem",
    level: "error",
    message: "any",
  });
  assertEquals(parseLine("arbiter: bad config"), { type: "text", line: "arbiter: bad config" });
  assertEquals(
    parseLine(JSON.stringify({
      time: "t",
      event: "worker.output",
      worker: { id: 0, pid: 5, generation: 1 },
      stream: "stderr",
      line: "boom",
    })),
    { type: "output", id: 0, pid: 5, stream: "stderr", line: "boom" },
  );
});

Deno.test("WorkerBook follows workers through start, ready and exit, with their output", () => {
  const book = new WorkerBook();
  book.apply({ type: "output", id: 0, pid: 5, stream: "stderr", line: "early", at: 0 });
  book.apply({ type: "started", id: 0, pid: 5, generation: 1, at: 1 });
  book.apply({ type: "started", id: 1, pid: 6, generation: 1, at: 1 });
  book.apply({ type: "ready", id: 0, pid: 5, why: "READY=1", at: 2 });
  assertEquals(book.readyCurrent().map((w) => w.pid), [5]);
  book.apply({ type: "exited", id: 0, pid: 5, how: "killed by SIGUSR1", at: 3 });
  assertEquals(book.running().map((w) => w.pid), [6]);
  assertEquals(book.get(5)?.output, ["stderr: early"]);
  assertEquals(book.recentOutput(), ["stderr: early"]);
});
