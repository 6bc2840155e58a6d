// `arbiter ctl` requests that wait, target or read output, end to end: a
// real master, real workers, the real client as a subprocess. reload and
// upgrade --wait (done, abandoned, timed out), restart ID (new worker
// first), signal SIG [ID], scale +N/-N, logs [-f].
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  arbiterArgv,
  arbiterCommand,
  type ArbiterProcess,
  freePort,
  logEvent,
  runCtl,
  startArbiter,
  waitFor,
} from "./_harness.ts";
import { generationReady, PY_WORKER, tempDir } from "./_workers.ts";

const ctl = (socket: string, ...args: string[]) => runCtl(["--socket", socket, ...args]);

interface Status {
  master: {
    generation: number;
    workers_desired: number;
    rollout: { attempt: number; kind: string; generation?: number; outcome: string } | null;
  };
  workers: { id: number; pid: number; generation: number; state: string }[];
}

async function status(socket: string): Promise<Status> {
  const r = await ctl(socket, "status", "--json");
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** A master with a control socket and captured output, from a config file in `dir`. */
async function startMaster(
  dir: string,
  extra = "",
): Promise<{ master: ArbiterProcess; socket: string; config: string }> {
  const socket = `${dir}/ctl.sock`;
  const config = `${dir}/app.toml`;
  const text = configText(freePort(), extra);
  await Deno.writeTextFile(
    config,
    extra.includes("worker_output") ? text.replace('worker_output = "prefix"\n', "") : text,
  );
  const master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
  return { master, socket, config };
}

function configText(port: number, extra: string): string {
  return `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${port}"\n` +
    `control_socket = "ctl.sock"\nworker_output = "prefix"\ngraceful_timeout = 5\n${extra}`;
}

/** Where `pattern` first matches in the master's log, or -1. */
const at = (master: ArbiterProcess, pattern: RegExp) => master.stderr().search(pattern);

Deno.test("ctl reload --wait and upgrade --wait: exit 0 once the new generation alone serves", async () => {
  await using dir = await tempDir();
  const { master, socket } = await startMaster(dir.path);
  await using _ = master;
  const reload = await ctl(socket, "reload", "--wait");
  assertEquals(reload.code, 0, reload.stderr);
  assert(reload.stdout.includes("reload done: generation 2 serves"), reload.stdout);
  const after = await status(socket);
  assertEquals(after.workers.map((w) => [w.generation, w.state]), [[2, "ready"], [2, "ready"]]);
  assertEquals(after.master.rollout?.outcome, "done");

  // An upgrade re-executes the master: the client polls through the socket's gap.
  const upgrade = await ctl(socket, "upgrade", "--wait", "--timeout", "60");
  assertEquals(upgrade.code, 0, upgrade.stderr);
  assert(upgrade.stdout.includes("upgrade done: generation 3 serves"), upgrade.stdout);
  await master.waitForEvent("upgrade.done");
  const upgraded = await status(socket);
  assertEquals(upgraded.workers.map((w) => [w.generation, w.state]), [[3, "ready"], [3, "ready"]]);
});

Deno.test("ctl reload --wait: exit 1 with the reason when abandoned, 3 when --timeout passes", async () => {
  await using dir = await tempDir();
  const { master, socket, config } = await startMaster(dir.path);
  await using _ = master;
  const port = (await Deno.readTextFile(config)).match(/127\.0\.0\.1:(\d+)/)![1];
  const failing = configText(Number(port), "").replace(
    `command = ${JSON.stringify(PY_WORKER)}`,
    `command = ["python3", "-c", "import sys; sys.exit(1)"]`,
  );
  await Deno.writeTextFile(config, failing);
  const abandoned = await ctl(socket, "reload", "--wait");
  assertEquals(abandoned.code, 1, abandoned.stdout + abandoned.stderr);
  assert(abandoned.stderr.startsWith("arbiter ctl: reload abandoned: "), abandoned.stderr);
  assert(abandoned.stderr.includes("the previous generation keeps serving"), abandoned.stderr);
  assertEquals(abandoned.stderr.trimEnd().split("\n").length, 1, "one line");
  await master.waitForEvent("reload.abandoned");
  assert((await status(socket)).workers.every((w) => w.generation === 1 && w.state === "ready"));

  // Workers that never say READY=1: the rollout is still in progress when --timeout passes.
  await Deno.writeTextFile(config, configText(Number(port), 'ready = "notify"\n'));
  const slow = await ctl(socket, "reload", "--wait", "--timeout", "1");
  assertEquals(slow.code, 3, slow.stdout + slow.stderr);
  assert(slow.stderr.includes("timed out after 1 s waiting for the reload"), slow.stderr);
});

Deno.test("ctl restart ID: the new worker is ready before the old one stops", async () => {
  await using dir = await tempDir();
  const { master, socket } = await startMaster(dir.path);
  await using _ = master;
  const before = await status(socket);
  const old = before.workers.find((w) => w.id === 0)!.pid;
  const other = before.workers.find((w) => w.id === 1)!.pid;
  const from = master.logOffset();
  const r = await ctl(socket, "restart", "0");
  assertEquals(r.code, 0, r.stderr);
  await master.waitForEvent("restart.requested", `(pid ${old})`, { after: from });
  const [, fresh] = await master.waitForEvent("worker.ready", /worker 0 \(pid (\d+)\)/, {
    after: from,
  });
  await master.waitForEvent("worker.exited", `(pid ${old}) stopped (restarted on request)`, {
    after: from,
  });
  const readyAt = at(master, logEvent("worker.ready", `(pid ${fresh})`));
  const exitAt = at(master, logEvent("worker.exited", `(pid ${old})`));
  assert(readyAt >= 0 && readyAt < exitAt, "the new one was ready before the old one exited");
  const after = await status(socket);
  assertEquals(after.workers.map((w) => w.pid).sort(), [Number(fresh), other].sort());
  const unknown = await ctl(socket, "restart", "5");
  assertEquals(unknown.code, 1);
  assertEquals(unknown.stderr, "arbiter ctl: the master refused: no worker 5: ids are 0 to 1\n");
});

Deno.test("ctl signal, scale +N/-N and logs [-f] on a live master", async () => {
  await using dir = await tempDir();
  const { master, socket } = await startMaster(dir.path);
  await using _ = master;
  const pids = (await status(socket)).workers.map((w) => w.pid);

  const one = await ctl(socket, "signal", "USR1", "1");
  assertEquals([one.code, one.stdout], [0, "SIGUSR1 sent to worker(s) 1\n"], one.stderr);
  await master.waitForLog(`worker 1 pid ${pids[1]} got USR1`, { stream: "stdout" });
  const logs = await ctl(socket, "logs", "1");
  assertEquals(logs.code, 0, logs.stderr);
  assert(logs.stdout.includes(`[worker 1] worker 1 pid ${pids[1]} got USR1`), logs.stdout);
  assert(!logs.stdout.includes("[worker 0]"), "only worker 1's lines");
  // An id that names no worker is refused as `ctl restart` refuses it, not answered with nothing.
  const nobody = await ctl(socket, "logs", "99");
  assertEquals(nobody.code, 1, nobody.stdout);
  assert(/no worker 99: ids are 0 to \d/.test(nobody.stderr), nobody.stderr);

  // -f follows: a line written after it started shows up.
  const follow = arbiterCommand(["ctl", "--socket", socket, "logs", "-f", "-n", "1"], {
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let seen = "";
  const reader = follow.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const read = (async () => {
    for (let r = await reader.read(); !r.done; r = await reader.read()) seen += r.value;
  })();
  try {
    await waitFor(() => seen.length > 0, { message: "ctl logs -f to print the last line" });
    const sent = await ctl(socket, "signal", "usr1", "0");
    assertEquals(sent.code, 0, sent.stderr);
    await waitFor(() => seen.includes(`[worker 0] worker 0 pid ${pids[0]} got USR1`), {
      message: `ctl logs -f to show the new line; saw ${JSON.stringify(seen)}`,
    });
  } finally {
    follow.kill("SIGTERM");
    await follow.status;
    await read.catch(() => {});
  }

  const killed = await ctl(socket, "signal", "KILL");
  assertEquals(killed.code, 2);
  assert(killed.stderr.includes("expected one of HUP, INT, QUIT, TERM"), killed.stderr);

  // TERM to one worker: its exit is judged as usual, so it is replaced.
  const term = await ctl(socket, "signal", "TERM", "0");
  assertEquals(term.code, 0, term.stderr);
  await master.waitForEvent("worker.exited", `(pid ${pids[0]})`);
  await waitFor(async () => {
    const s = await status(socket);
    return s.workers.length === 2 && s.workers.every((w) => w.state === "ready") &&
      !s.workers.some((w) => w.pid === pids[0]);
  }, { message: "worker 0 to be replaced" });

  assertEquals((await ctl(socket, "scale", "+2")).stdout, "workers 2 -> 4\n");
  await master.waitForChildren(4);
  assertEquals((await ctl(socket, "scale", "-3")).stdout, "workers 4 -> 1\n");
  const below = await ctl(socket, "scale", "-1");
  assertEquals(below.code, 1);
  assert(below.stderr.includes("1 - 1 = 0 workers: expected a result from 1 to"), below.stderr);
  assertEquals((await status(socket)).master.workers_desired, 1);
});

Deno.test("ctl logs with worker_output = inherit: says there is nothing to show", async () => {
  await using dir = await tempDir();
  const { master, socket } = await startMaster(dir.path, 'worker_output = "inherit"\n');
  await using _ = master;
  const logs = await ctl(socket, "logs");
  assertEquals(logs.code, 1, logs.stdout);
  assert(logs.stderr.includes("nothing to show: worker output is not captured"), logs.stderr);
});

/** Runs `argv` on a pseudo-terminal, presses `q` once `top` has drawn, and reports what it saw. */
const PTY_TOP = `
import json, os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
deadline = time.time() + 30
raw = None
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if raw is None and b"arbiter top" in out:
        raw = termios.tcgetattr(fd)
        os.write(fd, b"q")
    if raw is not None:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    status = 9
after = termios.tcgetattr(fd)
flags = termios.ICANON | termios.ECHO
print(json.dumps({
    "code": os.waitstatus_to_exitcode(status),
    "drawn": raw is not None,
    "raw": raw is not None and raw[3] & flags == 0,
    "restored": after[3] & flags == flags,
    "output": out.decode(errors="replace")[-400:],
}))
`;

Deno.test("ctl top on a terminal: raw while it runs, q quits with 0, the terminal is restored", async () => {
  await using dir = await tempDir();
  const { master, socket } = await startMaster(dir.path);
  await using _ = master;
  const out = await new Deno.Command("python3", {
    args: ["-c", PTY_TOP, ...arbiterArgv(), "ctl", "--socket", socket, "top"],
    stdin: "null",
  }).output();
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  assert(report.drawn, JSON.stringify(report));
  assertEquals(
    [report.code, report.raw, report.restored],
    [0, true, true],
    JSON.stringify(report),
  );
});
