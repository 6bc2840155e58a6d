// What a worker gets and how the master owns its sockets (docs/contract.md,
// "What a worker gets", "Files and exit codes"),
// against the real master, real workers and real sockets.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  freePort,
  httpGetJson,
  httpRequest,
  isAlive,
  parentOf,
  pgidOf,
  startArbiter,
  waitFor,
} from "./_harness.ts";
import { fdName } from "../src/sockets/listeners.ts";
import { DENO_WORKER, generationReady, PY_WORKER, startServing, tempDir } from "./_workers.ts";

interface WorkerInfo {
  pid: number;
  ppid: number;
  pgid?: number;
  worker_id: number;
  listen_fds: number;
  listen_pid: number;
  listen_fdnames: string;
  lang: string;
}

for (const [lang, command] of [["python", PY_WORKER], ["deno", DENO_WORKER]] as const) {
  Deno.test(`${lang} worker: socket at fd 3, LISTEN_* right, direct child, own group`, async () => {
    const port = freePort();
    await using master = await startServing(command, { port, workers: 2 });
    const seen = new Map<number, WorkerInfo>();
    await waitFor(async () => {
      const info = await httpGetJson<WorkerInfo>(`http://127.0.0.1:${port}/`);
      seen.set(info.worker_id, info);
      return seen.size === 2;
    }, { message: "both workers to answer" });
    for (const info of seen.values()) {
      assertEquals(info.lang, lang);
      assertEquals(info.listen_fds, 1);
      assertEquals(info.listen_pid, info.pid, "LISTEN_PID is the worker's own pid");
      assertEquals(info.listen_fdnames, `127.0.0.1_${port}`);
      assertEquals(info.ppid, master.pid, "the worker is the master's direct child");
      assertEquals(parentOf(info.pid), master.pid);
      assertEquals(pgidOf(info.pid), info.pid, "the worker leads its own process group");
    }
    assertEquals([...seen.keys()].sort(), [0, 1]);
  });
}

Deno.test("no fd of the master leaks into a worker", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 1 });
  const fds = await httpGetJson<{ fd: number; target: string }[]>(
    `http://127.0.0.1:${port}/fds`,
  );
  const listening = fds.find((f) => f.fd === 3)!;
  assert(listening.target.startsWith("socket:"), "fd 3 is the listening socket");
  // Beyond fd 3 the Python worker has only what it opened itself: accepted
  // connections (this request's, and perhaps a probe's that is still
  // closing) and its notify client. None of them is an open file of the
  // master's: an inherited fd would be the same socket or pipe in both.
  const extra = fds.filter((f) => f.fd > 3);
  assert(extra.length >= 1, JSON.stringify(fds));
  const mastersOwn = new Set(
    [...Deno.readDirSync(`/proc/${master.pid}/fd`)].flatMap((e) => {
      try {
        return [Deno.readLinkSync(`/proc/${master.pid}/fd/${e.name}`)];
      } catch {
        return []; // closed while we looked
      }
    }),
  );
  for (const f of extra) {
    assert(f.target.startsWith("socket:"), JSON.stringify(fds));
    assert(!mastersOwn.has(f.target), `worker fd ${f.fd} is the master's ${f.target}`);
  }
});

Deno.test("several binds at once: TCP v4, TCP v6 and a unix socket, in bind order", async () => {
  await using dir = await tempDir();
  const port4 = freePort();
  const port6 = freePort();
  const path = `${dir.path}/app.sock`;
  await using master = startArbiter([
    "-w",
    "1",
    "-b",
    `127.0.0.1:${port4}`,
    "-b",
    `[::1]:${port6}`,
    "-b",
    `unix:${path}`,
    "--",
    ...PY_WORKER,
  ]);
  await master.waitForLog(generationReady(1));
  const v4 = await httpGetJson<WorkerInfo>(`http://127.0.0.1:${port4}/`);
  assertEquals(v4.listen_fds, 3);
  const names = [`127.0.0.1:${port4}`, `[::1]:${port6}`, `unix:${path}`].map(fdName);
  assertEquals(v4.listen_fdnames, names.join(":"));
  const v6 = await httpGetJson<WorkerInfo>(`http://[::1]:${port6}/`);
  assertEquals(v6.pid, v4.pid);
  const viaUnix = await httpRequest("http://localhost/", { unixSocket: path });
  assertEquals(viaUnix.status, 200);
  master.signal("SIGTERM");
  assertEquals((await master.waitExit()).code, 0);
  assert(!(await exists(path)), "the unix socket is removed on a clean exit");
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("unix socket: a stale socket file is replaced", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/stale.sock`;
  // A socket file whose process is gone (Deno would unlink on close; Python does not).
  const made = await new Deno.Command("python3", {
    args: ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
  }).output();
  assert(made.success);
  assert(await exists(path));
  await using master = startArbiter(["-w", "1", "-b", `unix:${path}`, "--", ...PY_WORKER]);
  await master.waitForLog(generationReady(1));
  assertEquals((await httpRequest("http://localhost/", { unixSocket: path })).status, 200);
});

Deno.test("unix socket: a regular file at the path is refused with exit 1", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/file.sock`;
  await Deno.writeTextFile(path, "precious");
  await using master = startArbiter(["-w", "1", "-b", `unix:${path}`, "--", ...PY_WORKER]);
  const status = await master.waitExit();
  assertEquals(status.code, 1);
  assert(master.stderr().includes(path), master.stderr());
  assert(master.stderr().includes("not a socket"), master.stderr());
  assertEquals(await Deno.readTextFile(path), "precious", "the file is untouched");
});

Deno.test("unix socket: a symlink at the path is refused, not followed", async () => {
  await using dir = await tempDir();
  const target = `${dir.path}/target`;
  const path = `${dir.path}/link.sock`;
  await Deno.symlink(target, path);
  await using master = startArbiter(["-w", "1", "-b", `unix:${path}`, "--", ...PY_WORKER]);
  assertEquals((await master.waitExit()).code, 1);
  assert(master.stderr().includes("symbolic link"), master.stderr());
  assert(!(await exists(target)));
});

Deno.test("port in use: exit 1 with a message naming the address, no worker started", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    await using master = startArbiter(["-w", "2", "-b", `127.0.0.1:${port}`, "--", ...PY_WORKER]);
    assertEquals((await master.waitExit()).code, 1);
    assert(master.stderr().includes(`127.0.0.1:${port}`), master.stderr());
    assert(master.stderr().includes("address already in use"), master.stderr());
    assert(!master.stderr().includes("[worker.spawned]"), "no worker was started");
  } finally {
    taken.close();
  }
});

Deno.test("the socket stays open across worker restarts: no connection refused", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 1 });
  const first = await httpGetJson<WorkerInfo>(`http://127.0.0.1:${port}/`);
  Deno.kill(first.pid, "SIGKILL");
  // While no worker runs, connections queue in the master's socket backlog
  // and are served by the replacement: never refused.
  const info = await httpGetJson<WorkerInfo>(`http://127.0.0.1:${port}/`, {
    requestTimeoutMs: 10_000,
  });
  assert(info.pid !== first.pid);
  assertEquals(info.worker_id, 0);
  void master;
});

Deno.test("master SIGKILL leaves no worker behind", async () => {
  const port = freePort();
  const master = await startServing(PY_WORKER, { port, workers: 3 });
  const workers = await master.waitForChildren(3);
  master.signal("SIGKILL");
  await master.status;
  await waitFor(() => workers.every((pid) => !isAlive(pid)), {
    message: "workers to die with their master",
  });
  await master[Symbol.asyncDispose]();
});
