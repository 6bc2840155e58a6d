// `arbiter ctl` requests that wait, target or read output, against a fake
// handler behind the real control server: restart, signal, scale ±N,
// reload/upgrade --wait, logs; and the pure judge of a rollout's outcome.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseCli } from "../config/cli.ts";
import type { RolloutRecord } from "../core/rollout.ts";
import type { StatusReport } from "./api.ts";
import { FakeHandler, SAMPLE_STATUS, unixFetch } from "./_testing.ts";
import { type CtlRequest, formatStatus, runCtl } from "./ctl.ts";
import { startControlServer } from "./server.ts";
import { EXIT_TIMED_OUT, judgeRollout, waitForRollout } from "./wait.ts";
import { NOT_CAPTURED } from "./logs.ts";

async function ctl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const req = parseCli(["ctl", ...args]) as CtlRequest;
  let out = "";
  let err = "";
  const code = await runCtl(req, {}, "/", { out: (t) => out += t, err: (t) => err += t });
  return { code, out, err };
}

async function withServer(fn: (path: string, handler: FakeHandler) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-ctl-ops-" });
  const path = `${dir}/ctl.sock`;
  const handler = new FakeHandler();
  handler.answer = (action) => ({ ok: true, message: `master: ${action.type} accepted` });
  const server = await startControlServer(path, handler);
  try {
    await fn(path, handler);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const withRollout = (rollout: RolloutRecord | null): StatusReport => ({
  ...SAMPLE_STATUS,
  master: { ...SAMPLE_STATUS.master, rollout },
});

Deno.test("ctl restart, signal, scale +N/-N send what the command line says", async () => {
  await withServer(async (path, handler) => {
    const cases: [string[], unknown][] = [
      [["restart", "2"], { type: "restart", id: 2 }],
      [["signal", "hup"], { type: "signal", signal: "SIGHUP" }],
      [["signal", "SIGUSR2", "1"], { type: "signal", signal: "SIGUSR2", id: 1 }],
      [["scale", "+2"], { type: "scale", workers: 2, relative: true }],
      [["scale", "-1"], { type: "scale", workers: -1, relative: true }],
    ];
    for (const [args, action] of cases) {
      const { code, err } = await ctl(["--socket", path, ...args]);
      assertEquals([code, err], [0, ""], args.join(" "));
      assertEquals(handler.actions.at(-1), action, args.join(" "));
    }
  });
});

Deno.test("ctl parsing: bad ids, signals, --wait and -f where they do not apply", () => {
  const refused = (args: string[], text: string) => {
    try {
      parseCli(["ctl", ...args]);
    } catch (error) {
      assert((error as Error).message.includes(text), (error as Error).message);
      return;
    }
    throw new Error(`${args.join(" ")} was accepted`);
  };
  refused(["restart"], "missing worker id");
  refused(["restart", "x"], "worker id (ARBITER_WORKER_ID) from 0 to 9999");
  refused(["signal"], "expected one of HUP, INT, QUIT, TERM, USR1, USR2, WINCH, TTIN, TTOU");
  refused(["signal", "KILL"], '"Signalling workers", for why not KILL');
  refused(["signal", "HUP", "1", "2"], 'unexpected argument "2"');
  refused(["status", "--wait"], "--wait applies only to `ctl reload` and `ctl upgrade`");
  refused(["reload", "--timeout", "5"], "--timeout applies only with --wait");
  refused(["reload", "--wait", "--timeout", "0"], "seconds from 1 to 86400");
  refused(["status", "-f"], "-f/--follow applies only to `ctl logs`");
  refused(["logs", "-n", "0"], "lines from 1 to 1000");
  const logs = parseCli(["ctl", "logs", "-f", "-n", "5", "3"]) as CtlRequest;
  assertEquals([logs.id, logs.lines, logs.follow], [3, 5, true]);
  const wait = parseCli(["ctl", "upgrade", "--wait"]) as CtlRequest;
  assertEquals([wait.wait, wait.timeout], [true, 300]);
});

Deno.test("control socket: the new routes check their fields", async () => {
  await withServer(async (path) => {
    const post = async (route: string, body: unknown) => {
      const res = await unixFetch(path, route, { method: "POST", body: JSON.stringify(body) });
      return [res.status, (res.json() as { error?: string }).error];
    };
    assertEquals(await post("/v1/restart", {}), [400, 'missing field "id": expected {"id": N}']);
    assertEquals((await post("/v1/restart", { id: -1 }))[0], 400);
    assertEquals((await post("/v1/signal", { signal: 9 }))[0], 400);
    assertEquals((await post("/v1/scale", { by: 0 }))[0], 400);
    assertEquals((await post("/v1/scale", { by: 1, workers: 2 }))[0], 400);
    assertEquals((await unixFetch(path, "/v1/logs?limit=0")).status, 400);
    assertEquals((await unixFetch(path, "/v1/logs?lines=3")).status, 400);
  });
});

Deno.test("judgeRollout: a reload by attempt, an upgrade by the generation it starts", () => {
  const reload = { attempt: 2, kind: "reload" as const };
  const r = (over: Partial<RolloutRecord>): RolloutRecord => ({
    attempt: 2,
    kind: "reload",
    outcome: "in-progress",
    ...over,
  });
  assertEquals(judgeRollout({ ...reload }, r({ attempt: 1, outcome: "done" })).kind, "wait");
  assertEquals(judgeRollout({ ...reload }, r({})).kind, "wait");
  assertEquals(judgeRollout({ ...reload }, r({ outcome: "done", generation: 3 })), {
    kind: "done",
    message: "reload done: generation 3 serves; the old workers are gone",
  });
  const abandoned = judgeRollout({ ...reload }, r({ outcome: "abandoned", reason: "3 failed" }));
  assertEquals(abandoned.kind, "failed");
  // Superseded by a later reload: that one is followed.
  const target = { ...reload };
  assertEquals(judgeRollout(target, r({ attempt: 3 })).kind, "wait");
  assertEquals(target.attempt, 3);
  // An upgrade: refused in the old image (by attempt), done in the new one (by generation).
  const upgrade = { attempt: 4, kind: "upgrade" as const, generation: 5 };
  const old = r({ attempt: 4, kind: "upgrade", outcome: "refused", reason: "bad binary" });
  assertEquals(judgeRollout({ ...upgrade }, old), {
    kind: "failed",
    message: "upgrade refused, nothing changed: bad binary",
  });
  const fresh = r({ attempt: 1, kind: "upgrade", generation: 5, outcome: "done" });
  assertEquals(judgeRollout({ ...upgrade }, fresh).kind, "done");
  assertEquals(judgeRollout({ ...upgrade }, { ...fresh, outcome: "in-progress" }).kind, "wait");
  assertEquals(judgeRollout({ ...upgrade }, null).kind, "done", "a new image with no workers");
  assertEquals(judgeRollout({ ...reload }, undefined).kind, "failed", "an older master");
});

Deno.test("waitForRollout: polls through an unreachable master; times out with code 3", async () => {
  let clock = 0;
  const answers: (StatusReport | Error)[] = [
    withRollout({ attempt: 1, kind: "upgrade", outcome: "in-progress" }),
    new Error("no control socket"),
    new Error("connection refused"),
    withRollout({ attempt: 1, kind: "upgrade", generation: 3, outcome: "in-progress" }),
    withRollout({ attempt: 1, kind: "upgrade", generation: 3, outcome: "done" }),
  ];
  const io = {
    status: () => {
      const next = answers.shift()!;
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    now: () => clock,
    sleep: (ms: number) => Promise.resolve(void (clock += ms)),
  };
  const target = { attempt: 1, kind: "upgrade" as const, generation: 3 };
  const done = await waitForRollout(io, target, 10_000);
  assertEquals(done.code, 0, done.message);
  answers.push(...Array(100).fill(new Error("connection refused")));
  const late = await waitForRollout(io, target, 1000);
  assertEquals(late.code, EXIT_TIMED_OUT);
  assert(late.message.includes("does not answer: connection refused"), late.message);
  // Gone for good (a minute without an answer), or stopping: no point waiting on.
  answers.length = 0;
  answers.push(...Array(400).fill(new Error("connection refused")));
  const gone = await waitForRollout(io, target, 300_000);
  assertEquals(gone.code, 1);
  assert(gone.message.startsWith("the master has not answered for 60 s"), gone.message);
  answers.length = 0;
  const stopping = withRollout({ attempt: 1, kind: "upgrade", outcome: "in-progress" });
  answers.push({ ...stopping, master: { ...stopping.master, phase: "stopping" } });
  const stopped = await waitForRollout(io, target, 10_000);
  assertEquals([stopped.code, stopped.message], [
    1,
    "the master is stopping: the upgrade (attempt 1) will not finish",
  ]);
});

Deno.test("ctl reload --wait: exit 0 once done, 1 with the reason when abandoned", async () => {
  await withServer(async (path, handler) => {
    handler.answer = () => ({
      ok: true,
      message: "reloading",
      rollout: { attempt: 1, kind: "reload" },
    });
    let polls = 0;
    handler.onStatus = () => {
      polls++;
      handler.report = withRollout({
        attempt: 1,
        kind: "reload",
        generation: 2,
        outcome: polls < 3 ? "in-progress" : "done",
      });
    };
    const done = await ctl(["--socket", path, "reload", "--wait"]);
    assertEquals([done.code, done.err], [0, ""]);
    assertEquals(
      done.out,
      "reloading\nreload done: generation 2 serves; the old workers are gone\n",
    );
    handler.onStatus = () =>
      handler.report = withRollout({
        attempt: 1,
        kind: "reload",
        generation: 2,
        outcome: "abandoned",
        reason: "3 workers failed to boot",
      });
    const failed = await ctl(["--socket", path, "reload", "--wait", "--timeout", "5"]);
    assertEquals(failed.code, 1);
    assertEquals(
      failed.err,
      "arbiter ctl: reload abandoned: 3 workers failed to boot; " +
        "the previous generation keeps serving\n",
    );
  });
});

Deno.test("ctl logs: the last lines as [worker ID]; inherit says there is nothing", async () => {
  await withServer(async (path, handler) => {
    const line = (seq: number, id: number, text: string) => ({
      seq,
      id,
      pid: 100 + id,
      stream: "stdout" as const,
      time: "2026-01-01T00:00:00.000Z",
      line: text,
    });
    handler.logReport = { captured: true, lines: [line(1, 0, "hello"), line(2, 1, "hi")], next: 2 };
    const all = await ctl(["--socket", path, "logs", "-n", "5", "1"]);
    assertEquals([all.code, all.out], [0, "[worker 0] hello\n[worker 1] hi\n"]);
    assertEquals(handler.logQueries.at(-1), { id: 1, after: undefined, limit: 5 });
    handler.logReport = { captured: false, lines: [], next: 0 };
    const none = await ctl(["--socket", path, "logs"]);
    assertEquals([none.code, none.out, none.err], [1, "", `arbiter ctl: ${NOT_CAPTURED}\n`]);
  });
});

Deno.test("ctl status: the latest rollout has a line of its own", () => {
  const text = formatStatus(withRollout({
    attempt: 2,
    kind: "reload",
    generation: 3,
    outcome: "abandoned",
    reason: "3 workers failed to boot",
  }));
  assert(
    text.includes(
      "rollout  reload (attempt 2) to generation 3: abandoned: 3 workers failed to boot\n",
    ),
    text,
  );
  assert(!formatStatus(withRollout(null)).includes("rollout"));
});
