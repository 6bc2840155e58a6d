// In-place upgrade (USR2), systemd (socket activation, notify) and PID 1
// (docs/contract.md, "Worker lifecycle", "Upgrade and systemd") against the real master.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  arbiterArgv,
  childrenOf,
  freePort,
  httpGetJson,
  isAlive,
  LoadGenerator,
  readStat,
  startArbiter,
  waitFor,
  WORKERS_DIR,
} from "./_harness.ts";
import { generationReady, PY_WORKER, startServing, tempDir } from "./_workers.ts";

Deno.test("USR2 under load: same master pid, all workers new, no failed request", async () => {
  await using dir = await tempDir();
  const pidfile = `${dir.path}/arbiter.pid`;
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 2, args: ["-p", pidfile] });
  const before = await master.waitForChildren(2);
  const notifyDir = Deno.readTextFileSync(`/proc/${before[0]}/environ`).split("\0")
    .find((kv) => kv.startsWith("NOTIFY_SOCKET="))!.replace(/^NOTIFY_SOCKET=(.*)\/[^/]*$/, "$1");
  assert(Deno.lstatSync(notifyDir).isDirectory);
  const load = new LoadGenerator().start(`http://127.0.0.1:${port}/`, { concurrency: 4 });
  master.signal("SIGUSR2");
  await master.waitForEvent("upgrade.done", "took over 2 worker(s)");
  // The old image's notify directory (handed over in the sealed state) is removed.
  await waitFor(() => !exists(notifyDir), { message: `${notifyDir} removed` });
  await master.waitForLog(generationReady(2));
  await waitFor(() => before.every((pid) => !isAlive(pid)), { message: "old workers drained" });
  const result = await load.stop();
  assertEquals(result.failed, 0, result.errors.join("\n"));
  assert(result.ok > 20);
  const after = await master.waitForChildren(2);
  assert(after.every((pid) => !before.includes(pid)), "every worker is new");
  for (const pid of after) assertEquals(readStat(pid)?.ppid, master.pid);
  assertEquals(
    await Deno.readTextFile(pidfile),
    `${master.pid}\n`,
    "the pidfile names the same pid",
  );
  // The upgraded master is a full master: it still stops cleanly.
  master.signal("SIGTERM");
  assertEquals((await master.waitExit()).code, 0);
});

Deno.test("USR2 with a broken config is refused and nothing changes", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const config = `${dir.path}/app.toml`;
  const good = `command = ${JSON.stringify(PY_WORKER)}\nworkers = 2\nbind = "127.0.0.1:${port}"\n`;
  await Deno.writeTextFile(config, good);
  await using master = startArbiter(["--config", config]);
  await master.waitForLog(generationReady(1));
  const before = (await master.waitForChildren(2)).sort();
  await Deno.writeTextFile(config, good + "workers = 3\n"); // duplicate key: invalid TOML
  master.signal("SIGUSR2");
  await master.waitForEvent("upgrade.refused", "check-config failed");
  assertEquals(master.children().sort(), before);
  assert(!master.stderr().includes("[upgrade.done]"));
  assertEquals((await httpGetJson<{ lang: string }>(`http://127.0.0.1:${port}/`)).lang, "python");
});

Deno.test("a second USR2 while an upgrade is in progress is refused", async () => {
  const port = freePort();
  // New workers take 2 s to become ready, so the upgrade stays in progress.
  await using master = startArbiter(
    ["-w", "1", "-b", `127.0.0.1:${port}`, "--ready", "notify", "--", ...PY_WORKER],
    { env: { NOTIFY_READY: "1", BOOT_DELAY_MS: "2000" } },
  );
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
  master.signal("SIGUSR2");
  await master.waitForEvent("upgrade.done");
  master.signal("SIGUSR2");
  await master.waitForEvent("upgrade.refused", "an upgrade is already in progress");
  await master.waitForLog(generationReady(2), { timeoutMs: 20_000 });
});

// ---- forged upgrade state ----

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("a forged upgrade state deletes nothing: ignored with a warning, or its paths refused", async () => {
  await using dir = await tempDir();
  const victim = `${dir.path}/victim`;
  await Deno.mkdir(`${victim}/sub`, { recursive: true });
  await Deno.writeTextFile(`${victim}/keep.txt`, "precious");
  // Looks like a hub directory (name, owner, mode) but holds files the master never made.
  const lookalike = `${dir.path}/arbiter-lookalike`;
  await Deno.mkdir(`${lookalike}/sub`, { recursive: true });
  await Deno.writeTextFile(`${lookalike}/1.sock`, "a regular file, not a socket");
  await Deno.chmod(lookalike, 0o711);
  const cases: [mode: string, notifyDir: string, expect: RegExp][] = [
    ["json", victim, /ARBITER_UPGRADE_STATE ignored \(not an fd handed over .*\); starting fresh/],
    ["unsealed", victim, /ARBITER_UPGRADE_STATE ignored \(fd \d+ is not sealed\)/],
    ["wrong-name", victim, /ARBITER_UPGRADE_STATE ignored \(fd \d+ is not our memfd\)/],
    ["sealed", victim, /old notify directory is not one this master made \(.*victim is not named/],
    ["sealed", lookalike, /re-executed in place \(pid \d+\); took over 0 worker/],
  ];
  for (const [mode, notifyDir, expect] of cases) {
    const port = freePort();
    await using master = startArbiter(
      ["-w", "1", "-b", `127.0.0.1:${port}`, "--", ...PY_WORKER],
      {
        cmd: [
          "python3",
          `${WORKERS_DIR}/forge_upgrade_state.py`,
          mode,
          notifyDir,
          ...arbiterArgv(),
        ],
      },
    );
    await master.waitForEvent("generation.ready", undefined, { timeoutMs: 20_000 });
    await master.waitForLog(expect);
    if (mode === "sealed") {
      // Even a state this user forged well gets no listener or worker that is not ours.
      await master.waitForEvent(
        "upgrade.warning",
        "inherited fd 0 (stdin) is not a listening socket",
      );
      await master.waitForEvent("upgrade.warning", "inherited worker pid 1 is not a child");
    }
    assertEquals((await httpGetJson<{ lang: string }>(`http://127.0.0.1:${port}/`)).lang, "python");
    master.signal("SIGTERM");
    assertEquals((await master.waitExit()).code, 0, `${mode}: ${master.stderr()}`);
    assertEquals(await Deno.readTextFile(`${victim}/keep.txt`), "precious", mode);
    assert(Deno.statSync(`${victim}/sub`).isDirectory, mode);
    assert(Deno.statSync(`${lookalike}/1.sock`).isFile, mode);
    assert(Deno.statSync(`${lookalike}/sub`).isDirectory, mode);
  }
});

// ---- systemd ----

const hasTool = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};

Deno.test({
  name: "socket activation: systemd-socket-activate's socket is served and passed on",
  ignore: !hasTool("/usr/bin/systemd-socket-activate"),
  async fn() {
    await using dir = await tempDir();
    const port = freePort();
    const path = `${dir.path}/activated.sock`;
    await using master = startArbiter(["-w", "2", "--", ...PY_WORKER], {
      cmd: [
        "systemd-socket-activate",
        "-l",
        `127.0.0.1:${port}`,
        "-l",
        path,
        "--fdname=web:admin",
        ...arbiterArgv(),
      ],
    });
    await master.waitForLog(new RegExp(`Listening on 127\\.0\\.0\\.1:${port}`));
    // systemd-socket-activate starts its command at the first connection; that
    // connection waits in the socket's backlog until a worker accepts it.
    const info = await httpGetJson<{ listen_fds: number; listen_fdnames: string; ppid: number }>(
      `http://127.0.0.1:${port}/`,
      { requestTimeoutMs: 20_000 },
    );
    await master.waitForLog(generationReady(1));
    assertEquals(info.listen_fds, 2);
    assertEquals(info.listen_fdnames, "web:admin", "systemd's names are passed on");
    assertEquals(info.ppid, master.pid, "systemd-socket-activate execs the master in place");
    master.signal("SIGTERM");
    assertEquals((await master.waitExit()).code, 0);
    assert((await Deno.lstat(path)).isSocket, "a socket systemd made is never unlinked");
  },
});

Deno.test("NOTIFY_SOCKET: the master says READY, RELOADING, READY, STOPPING and pings the watchdog", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/notify.sock`;
  const listener = Deno.listenDatagram({ transport: "unixpacket", path });
  const messages: string[] = [];
  const receiving = (async () => {
    try {
      for await (const [data] of listener) messages.push(new TextDecoder().decode(data));
    } catch { /* closed */ }
  })();
  const seen = (re: RegExp) =>
    waitFor(() => messages.some((m) => re.test(m)), { message: `a notify message ${re}` });
  try {
    const port = freePort();
    await using master = startArbiter(["-w", "1", "-b", `127.0.0.1:${port}`, "--", ...PY_WORKER], {
      env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: "400000" },
    });
    await seen(/READY=1/);
    assert(messages.find((m) => m.includes("READY=1"))!.includes("STATUS="));
    await seen(/WATCHDOG=1/);
    const info = await httpGetJson<{ env: Record<string, string> }>(`http://127.0.0.1:${port}/`);
    assert(info.env.NOTIFY_SOCKET !== path, "the master's NOTIFY_SOCKET never reaches a worker");
    assertEquals(info.env.WATCHDOG_USEC, "30000000", "the worker's own watchdog, not systemd's");
    master.signal("SIGHUP");
    await seen(/RELOADING=1\nMONOTONIC_USEC=\d+/);
    await master.waitForLog(generationReady(2));
    await waitFor(() => messages.filter((m) => m.includes("READY=1")).length >= 2);
    master.signal("SIGTERM");
    await master.waitExit();
    await seen(/STOPPING=1/);
  } finally {
    listener.close();
    await receiving;
  }
});

Deno.test("examples/systemd: a Type=notify service with a matching socket unit", async () => {
  const service = await Deno.readTextFile(
    new URL("../examples/systemd/arbiter.service", import.meta.url),
  );
  const socket = await Deno.readTextFile(
    new URL("../examples/systemd/arbiter.socket", import.meta.url),
  );
  assert(/^Type=notify$/m.test(service));
  assert(/^ExecReload=.* ctl .*reload --wait$/m.test(service));
  assert(/^ListenStream=/m.test(socket));
});

// ---- PID 1 ----

async function canUnshare(): Promise<boolean> {
  try {
    const out = await new Deno.Command("unshare", {
      args: ["--pid", "--fork", "--mount-proc", "true"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "PID 1: orphans reparented to the master are reaped; TERM exits 0",
  ignore: !(await canUnshare()),
  async fn() {
    const port = freePort();
    // The worker forks a short-lived grandchild and leaves it: an orphan,
    // reparented to PID 1 (the master), which must reap it.
    const script = `(sleep 3 &) ; exec python3 ${PY_WORKER[1]}`;
    await using outer = startArbiter(
      ["-w", "1", "-b", `127.0.0.1:${port}`, "--", "sh", "-c", script],
      {
        cmd: [
          "unshare",
          "--pid",
          "--fork",
          "--mount-proc",
          ...arbiterArgv(),
        ],
      },
    );
    await outer.waitForLog(generationReady(1));
    const [master] = childrenOf(outer.pid); // unshare's child: PID 1 inside
    assert(master !== undefined);
    assert(outer.stderr().includes("master started (pid 1)"), outer.stderr());
    const orphan = await waitFor(() => {
      const pid = childrenOf(master).find((p) => readStat(p)?.comm === "sleep");
      return pid ?? false;
    }, { message: "the orphan to be reparented to the master" });
    await waitFor(() => readStat(orphan) === undefined, {
      message: "the orphan to be reaped (no zombie left)",
    });
    assertEquals((await httpGetJson<{ lang: string }>(`http://127.0.0.1:${port}/`)).lang, "python");
    Deno.kill(master, "SIGTERM");
    assertEquals((await outer.waitExit()).code, 0);
  },
});
