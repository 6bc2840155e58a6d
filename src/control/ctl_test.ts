import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { parseCli } from "../config/cli.ts";
import type { StatusReport } from "./api.ts";
import { FakeHandler, makeStaleSocket, SAMPLE_STATUS } from "./_testing.ts";
import { type CtlRequest, formatDuration, formatStatus, runCtl } from "./ctl.ts";
import { startControlServer } from "./server.ts";
import { connectionCap, softFileLimit } from "../http/bounded_server.ts";

/** Runs `arbiter ctl ARGS` (parsed by the real command-line parser) and captures its output. */
async function ctl(
  args: string[],
  cwd = "/",
): Promise<{ code: number; out: string; err: string }> {
  const req = parseCli(["ctl", ...args]) as CtlRequest;
  assertEquals(req.kind, "ctl");
  let out = "";
  let err = "";
  const code = await runCtl(req, {}, cwd, { out: (t) => out += t, err: (t) => err += t });
  return { code, out, err };
}

async function withServer(
  fn: (path: string, handler: FakeHandler, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "arbiter-ctl-" });
  const path = `${dir}/ctl.sock`;
  const handler = new FakeHandler();
  handler.answer = (action) => ({ ok: true, message: `master: ${action.type} accepted` });
  const server = await startControlServer(path, handler);
  try {
    await fn(path, handler, dir);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ctl status: prints a table of the master and its workers", async () => {
  await withServer(async (path) => {
    const { code, out, err } = await ctl(["--socket", path, "status"]);
    assertEquals([code, err], [0, ""]);
    assertEquals(out, formatStatus(SAMPLE_STATUS));
    const lines = out.split("\n");
    assertEquals(
      lines[0],
      "master   pid 4242, arbiter 0.1.0, up 2h05m, running, reloading",
    );
    assertEquals(lines[1], "config   /app/app.toml");
    assertEquals(lines[2], "workers  2 desired, 1 ready, 1 booting, 1 stopping, generation 2");
    assertEquals(lines[3], "");
    assertMatch(lines[4], /^ID +PID +GEN +STATE +AGE +RESTARTS +LAST EXIT +STATUS$/);
    assertMatch(lines[5], /^0 +4250 +2 +ready +3m12s +0 +- +serving 3 requests$/);
    assertMatch(lines[6], /^1 +4251 +1 +stopping +2h05m +2 +SIGKILL +-$/);
    assertMatch(lines[7], /^1 +- +2 +booting +0s +2 +code 1 +-$/);
    assertEquals(lines.length, 9);
    // Columns line up: every cell of a column starts at the header's offset.
    for (const header of ["PID", "STATE", "LAST EXIT"]) {
      const col = lines[4].indexOf(header);
      for (const row of lines.slice(5, 8)) assert(row[col - 1] === " " && row[col] !== " ", row);
    }
  });
});

Deno.test("ctl status --json: prints exactly the status JSON", async () => {
  await withServer(async (path) => {
    const { code, out, err } = await ctl(["status", "--json", "-s", path]);
    assertEquals([code, err], [0, ""]);
    assertEquals(out, JSON.stringify(SAMPLE_STATUS) + "\n");
    const parsed = JSON.parse(out) as StatusReport;
    assertEquals(Object.keys(parsed), ["master", "workers"]);
    assertEquals(parsed.workers[0].id, 0);
    assertEquals(parsed.workers[0].pid, 4250);
  });
});

Deno.test("ctl: every action verb sends its request and prints the master's message", async () => {
  await withServer(async (path, handler) => {
    const cases: [string[], unknown, string][] = [
      [["reload"], { type: "reload" }, "master: reload accepted\n"],
      [["scale", "3"], { type: "scale", workers: 3 }, "master: scale accepted\n"],
      [["stop"], { type: "stop", quick: false }, "master: stop accepted\n"],
      [["quick-stop"], { type: "stop", quick: true }, "master: stop accepted\n"],
      [["upgrade"], { type: "upgrade" }, "master: upgrade accepted\n"],
    ];
    for (const [args, action, message] of cases) {
      const { code, out, err } = await ctl(["--socket", path, ...args]);
      assertEquals({ code, out, err }, { code: 0, out: message, err: "" }, args.join(" "));
      assertEquals(handler.actions.at(-1), action);
    }
    assertEquals(handler.actions.length, cases.length);
  });
});

Deno.test("ctl: a refusal by the master is one line and exit 1", async () => {
  await withServer(async (path, handler) => {
    handler.answer = () => ({ ok: false, error: "the master is stopping" });
    const { code, out, err } = await ctl(["--socket", path, "reload"]);
    assertEquals({ code, out, err }, {
      code: 1,
      out: "",
      err: "arbiter ctl: the master refused: the master is stopping\n",
    });
    handler.answer = () => {
      throw new Error("kaput");
    };
    const failed = await ctl(["--socket", path, "scale", "2"]);
    assertEquals(failed.code, 1);
    assertEquals(failed.err, "arbiter ctl: the master refused: internal error: kaput\n");
  });
});

Deno.test("ctl: a missing socket is one line and exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const verb of [["status"], ["status", "--json"], ["reload"], ["scale", "2"]]) {
      const { code, out, err } = await ctl(["--socket", `${dir}/none.sock`, ...verb]);
      assertEquals({ code, out }, { code: 1, out: "" });
      assertEquals(
        err,
        `arbiter ctl: no control socket at ${dir}/none.sock: ` +
          "is the master running, with control_socket set?\n",
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ctl: a stale socket (connection refused) and a non-socket are exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeStaleSocket(`${dir}/stale.sock`);
    let r = await ctl(["--socket", `${dir}/stale.sock`, "status"]);
    assertEquals(r.code, 1);
    assertEquals(
      r.err,
      `arbiter ctl: the master is not running: connection refused at ${dir}/stale.sock ` +
        "(a stale socket?)\n",
    );
    await Deno.writeTextFile(`${dir}/file`, "");
    r = await ctl(["--socket", `${dir}/file`, "stop"]);
    assertEquals([r.code, r.err], [1, `arbiter ctl: ${dir}/file is not a socket\n`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ctl: a control socket at its connection cap is one clear line and exit 1", async () => {
  await withServer(async (path) => {
    const held: Deno.Conn[] = [];
    try {
      // One more than the cap: the last one is closed by the server, so all slots are taken.
      for (let i = 0; i <= connectionCap(softFileLimit()); i++) {
        held.push(await Deno.connect({ transport: "unix", path }));
      }
      assertEquals(await held.at(-1)!.read(new Uint8Array(1)), null);
      const { code, out, err } = await ctl(["--socket", path, "status"]);
      assertEquals([code, out], [1, ""]);
      assertMatch(err, /closed the connection .* without an answer: .*connection limit/);
    } finally {
      for (const conn of held) conn.close();
    }
  });
});

Deno.test("ctl: the socket comes from --config's control_socket, relative to the file", async () => {
  await withServer(async (_path, handler, dir) => {
    await Deno.mkdir(`${dir}/conf`);
    await Deno.writeTextFile(
      `${dir}/conf/app.toml`,
      'command = ["x"]\ncontrol_socket = "../ctl.sock"\n',
    );
    const r = await ctl(["--config", "conf/app.toml", "reload"], dir);
    assertEquals([r.code, r.out, r.err], [0, "master: reload accepted\n", ""]);
    assertEquals(handler.actions, [{ type: "reload" }]);
    // --socket wins over --config.
    const bySocket = await ctl(["-c", "conf/app.toml", "-s", "ctl.sock", "status", "--json"], dir);
    assertEquals(bySocket.code, 0);
  });
});

Deno.test("ctl: no socket named, or a config without one, is a usage error (exit 2)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let r = await ctl(["status"], dir);
    assertEquals([r.code, r.out], [2, ""]);
    assertEquals(
      r.err,
      "arbiter ctl: no control socket given: use --socket PATH, " +
        "or --config FILE with control_socket set\n",
    );
    await Deno.writeTextFile(`${dir}/app.toml`, 'command = ["x"]\n');
    r = await ctl(["--config", "app.toml", "status"], dir);
    assertEquals(r.code, 2);
    assertEquals(
      r.err,
      "arbiter ctl: app.toml sets no control_socket; set one there or use --socket PATH\n",
    );
    r = await ctl(["--config", "missing.toml", "reload"], dir);
    assertEquals(r.code, 2);
    assertEquals(
      r.err,
      "arbiter ctl: missing.toml: cannot read the config file: no such file or directory\n",
    );
    await Deno.writeTextFile(`${dir}/bad.toml`, "control_socket = [1]\n");
    r = await ctl(["--config", "bad.toml", "reload"], dir);
    assertEquals(r.code, 2);
    assertEquals(r.err, "arbiter ctl: bad.toml: control_socket: expected a path, got [1]\n");
    await Deno.writeTextFile(`${dir}/broken.toml`, "control_socket = \n");
    r = await ctl(["--config", "broken.toml", "reload"], dir);
    assertEquals(r.code, 2);
    assertMatch(r.err, /^arbiter ctl: broken\.toml: cannot read the config file: .+\n$/);
    assertEquals(r.err.split("\n").length, 2, "one line");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatStatus: no workers, no config file, stopping", () => {
  const report: StatusReport = {
    master: {
      ...SAMPLE_STATUS.master,
      config_file: null,
      phase: "stopping",
      reloading: false,
      uptime_s: 3,
    },
    workers: [],
  };
  assertEquals(
    formatStatus(report),
    "master   pid 4242, arbiter 0.1.0, up 3s, stopping\n" +
      "config   (none: command line only)\n" +
      "workers  2 desired, 0 ready, generation 2\n\n(no workers)\n",
  );
});

Deno.test("formatDuration", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [0.9, "0s"],
    [59.99, "59s"],
    [60, "1m00s"],
    [192.5, "3m12s"],
    [3599, "59m59s"],
    [3600, "1h00m"],
    [7512, "2h05m"],
    [86400, "1d00h"],
    [3 * 86400 + 4 * 3600 + 5, "3d04h"],
    [-5, "0s"],
  ];
  for (const [s, text] of cases) assertEquals(formatDuration(s), text, String(s));
});
