import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { formatJson, formatText, getLog, type LogOptions, setupLogging } from "./log.ts";
import { ArbiterError } from "../errors.ts";
import type { LogRecord } from "@logtape/logtape";

const TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z arbiter\[(\d+)\] ([A-Z]+) (.*)$/;

function lines(path: string): string[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l !== "");
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-log-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("text format to a file: one line per event, levels filtered, no extra properties", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/arbiter.log`;
    const logging = await setupLogging({ level: "info", format: "text", file });
    try {
      const log = getLog();
      log.debug("hidden {x}", { x: 1 });
      log.info("worker {id} (pid {pid}) exited with code {code}", {
        id: 0,
        pid: 99,
        code: 1,
        extra: "not shown",
      });
      log.warn("multi\nline");
      log.error("boom {err}", { err: new Error("bad thing") });
      getLog().fatal("the end");
    } finally {
      await logging.close();
    }
    const got = lines(file);
    assertEquals(got.length, 4, got.join("\n"));
    const m = got[0].match(TEXT_LINE);
    assert(m, got[0]);
    assertEquals(m[1], String(Deno.pid));
    assertEquals(m[2], "INFO");
    assertEquals(m[3], "worker 0 (pid 99) exited with code 1");
    assertEquals(got[1].match(TEXT_LINE)?.slice(2), ["WARNING", "multi\\nline"]);
    assertEquals(got[2].match(TEXT_LINE)?.slice(2), ["ERROR", "boom bad thing"]);
    assertEquals(got[3].match(TEXT_LINE)?.slice(2), ["FATAL", "the end"]);
  });
});

Deno.test("json format to a file: JSON Lines with all properties", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/arbiter.log`;
    const logging = await setupLogging({ level: "debug", format: "json", file });
    try {
      getLog().trace("hidden");
      getLog().debug("worker {id} (pid {pid}) exited with code {code}", {
        id: 0,
        pid: 99,
        code: 1,
        extra: "kept",
        big: 10n,
        msg: "a colliding key is prefixed",
      });
    } finally {
      await logging.close();
    }
    const got = lines(file);
    assertEquals(got.length, 1, got.join("\n"));
    const obj = JSON.parse(got[0]);
    assertMatch(obj.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assertEquals(obj, {
      time: obj.time,
      level: "debug",
      pid: Deno.pid,
      msg: "worker 0 (pid 99) exited with code 1",
      id: 0,
      _pid: 99,
      code: 1,
      extra: "kept",
      big: "10",
      _msg: "a colliding key is prefixed",
    });
  });
});

Deno.test("reopen: after a rename, new lines go to a new file at the old path", async () => {
  await withTempDir(async (dir) => {
    const file = `${dir}/arbiter.log`;
    const logging = await setupLogging({ level: "info", format: "text", file });
    try {
      getLog().info("before rotation");
      await Deno.rename(file, `${file}.1`);
      getLog().info("after rename, before reopen");
      logging.reopen();
      getLog().info("after reopen");
    } finally {
      await logging.close();
    }
    const old = lines(`${file}.1`);
    const cur = lines(file);
    assertEquals(old.map((l) => l.match(TEXT_LINE)?.[3]), [
      "before rotation",
      "after rename, before reopen",
    ]);
    assertEquals(cur.map((l) => l.match(TEXT_LINE)?.[3]), ["after reopen"]);
  });
});

Deno.test("reopen: an unopenable path keeps the old file and logs an error", async () => {
  await withTempDir(async (dir) => {
    const sub = `${dir}/sub`;
    await Deno.mkdir(sub);
    const file = `${sub}/arbiter.log`;
    const logging = await setupLogging({ level: "info", format: "text", file });
    try {
      await Deno.rename(sub, `${dir}/moved`);
      logging.reopen();
      getLog().info("still logging");
    } finally {
      await logging.close();
    }
    const got = lines(`${dir}/moved/arbiter.log`);
    assertEquals(got.length, 2, got.join("\n"));
    assertMatch(got[0], /ERROR \[log\.reopen_failed\] cannot reopen log file .*arbiter\.log: /);
    assertMatch(got[1], /INFO still logging$/);
  });
});

Deno.test("apply: level, format and file change on reload", async () => {
  await withTempDir(async (dir) => {
    const a = `${dir}/a.log`;
    const b = `${dir}/b.log`;
    const logging = await setupLogging({ level: "warning", format: "text", file: a });
    try {
      getLog().info("dropped");
      getLog().warn("kept in a");
      await logging.apply({ level: "debug", format: "json", file: b });
      getLog().debug("in b as json");
      await logging.apply({ level: "error", format: "json", file: b });
      getLog().warn("dropped again");
    } finally {
      await logging.close();
    }
    assertEquals(lines(a).map((l) => l.match(TEXT_LINE)?.[3]), ["kept in a"]);
    assertEquals(lines(b).map((l) => JSON.parse(l).msg), ["in b as json"]);
  });
});

Deno.test("setupLogging: an unopenable file is an ArbiterError with exit code 1", async () => {
  let caught: unknown;
  try {
    await setupLogging({ level: "info", format: "text", file: "/nonexistent-dir/x/arbiter.log" });
  } catch (err) {
    caught = err;
  }
  assert(caught instanceof ArbiterError, String(caught));
  assertEquals(caught.exitCode, 1);
  assertMatch(caught.message, /nonexistent-dir/);
});

Deno.test("formatters: values are rendered, JSON survives cycles", () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const record: LogRecord = {
    category: ["arbiter"],
    level: "warning",
    message: ["cmd ", ["python3", "app.py"], " obj ", { a: 1 }, ""],
    rawMessage: "cmd {cmd} obj {obj}",
    timestamp: Date.UTC(2026, 10, 25, 17, 40, 0, 123),
    properties: { cmd: ["python3", "app.py"], obj: { a: 1 }, cyclic },
  };
  assertEquals(
    formatText(record, 1234),
    '2026-11-25T17:40:00.123Z arbiter[1234] WARNING cmd ["python3","app.py"] obj { a: 1 }\n',
  );
  const obj = JSON.parse(formatJson(record, 1234));
  assertEquals(obj.level, "warning");
  assertEquals(obj.pid, 1234);
  assertEquals(obj.cmd, ["python3", "app.py"]);
  assertEquals(typeof obj.cyclic, "string");
});

Deno.test("formatters: the event is a JSON field and shows in brackets in text; the worker is one object", () => {
  const worker = { id: 2, pid: 99, generation: 3 };
  const record: LogRecord = {
    category: ["arbiter"],
    level: "info",
    message: ["worker ", 2, " (pid ", 99, ") is ready (", "READY=1", ")"],
    rawMessage: "worker {worker.id} (pid {worker.pid}) is ready ({why})",
    timestamp: Date.UTC(2026, 10, 25, 17, 40, 0, 123),
    properties: { event: "worker.ready", worker, why: "READY=1" },
  };
  assertEquals(
    formatText(record, 1234),
    "2026-11-25T17:40:00.123Z arbiter[1234] INFO [worker.ready] worker 2 (pid 99) is ready (READY=1)\n",
  );
  const obj = JSON.parse(formatJson(record, 1234));
  assertEquals(Object.keys(obj), ["time", "level", "event", "pid", "msg", "worker", "why"]);
  assertEquals([obj.event, obj.pid, obj.worker], ["worker.ready", 1234, worker]);
});

/** Runs a child Deno program that logs then exits at once; its output must be complete. */
async function runChild(opts: LogOptions, exitCode: number): Promise<Deno.CommandOutput> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-log-child-" });
  try {
    const script = `${dir}/child.ts`;
    const logTs = new URL("./log.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { getLog, setupLogging } from ${JSON.stringify(logTs)};
const logging = await setupLogging(${JSON.stringify(opts)});
for (let i = 0; i < 200; i++) getLog().info("line {i}", { i });
getLog().error("last words");
await logging.close(); // as the one exit path does (src/cli/main.ts)
Deno.exit(${exitCode});
`,
    );
    const config = new URL("../../deno.json", import.meta.url).pathname;
    return await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "--config", config, script],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("stderr sink: no line lost when the process exits right after logging and closing", async () => {
  const out = await runChild({ level: "info", format: "json" }, 3);
  assertEquals(out.code, 3);
  const got = new TextDecoder().decode(out.stderr).split("\n").filter((l) => l !== "");
  assertEquals(got.length, 201, got.slice(-3).join("\n"));
  assertEquals(JSON.parse(got[200]).msg, "last words");
  assertEquals(JSON.parse(got[200]).level, "error");
  assertEquals(out.stdout.length, 0);
});
