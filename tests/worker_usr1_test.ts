// worker_usr1 (README "Security → USR1 and Deno's inspector"): "blocked" keeps
// a `deno run` worker's inspector closed while USR1 still reaches it; "off"
// sends workers no USR1 at all. "send" is covered by usr1_test.ts and
// usr1_inspector_test.ts.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  type ArbiterProcess,
  freePort,
  httpRequest,
  isAlive,
  REPO_ROOT,
  startArbiter,
  waitFor,
} from "./_harness.ts";
import { DENO_WORKER, PY_WORKER, tempDir } from "./_workers.ts";
import { blocksUsr1 } from "../src/master/usr1.ts";
import { INSPECTOR_PORT, listensOn } from "./_inspector.ts";

const USR1_BIT = 1n << 9n;
/** Whether USR1 waits, blocked, in the process-wide pending set of `pid` (ShdPnd). */
function usr1Pending(pid: number): boolean {
  const hex = /^ShdPnd:\s*([0-9a-f]+)$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & USR1_BIT) !== 0n;
}

async function startWith(
  dir: string,
  command: string[],
  lines: string[],
): Promise<{ master: ArbiterProcess; port: number; log: string }> {
  const port = freePort();
  const log = `${dir}/arbiter.log`;
  const config = `${dir}/app.toml`;
  await Deno.writeTextFile(
    config,
    [
      `command = ${JSON.stringify(command)}`,
      `workers = 1`,
      `bind = "127.0.0.1:${port}"`,
      `log_file = ${JSON.stringify(log)}`,
      ...lines,
    ].join("\n"),
  );
  const master = startArbiter(["--config", config]);
  await waitFor(
    async () => (await Deno.readTextFile(log).catch(() => "")).includes("generation 1 is ready"),
    {
      timeoutMs: 20_000,
    },
  );
  await waitFor(() => master.stdout().includes("listening"), { message: "the worker to listen" });
  return { master, port, log };
}

Deno.test('worker_usr1 = "blocked": a deno run worker gets USR1 but its inspector stays closed; hooks get a clean mask', async () => {
  await using dir = await tempDir();
  const hookOut = `${dir.path}/hook-sigblk`;
  const { master, port } = await startWith(dir.path, DENO_WORKER, [
    `worker_usr1 = "blocked"`,
    `when_ready = ["sh", "-c", "grep SigBlk /proc/self/status > \\"$1\\"", "sh", ${
      JSON.stringify(hookOut)
    }]`,
  ]);
  await using _ = master;
  const [worker] = await master.waitForChildren(1);
  assert(blocksUsr1(Deno.readTextFileSync(`/proc/${worker}/status`)), "the worker blocks USR1");
  assert(!usr1Pending(worker));
  master.signal("SIGUSR1");
  // Blocked, the signal stays pending: proof that it came and that the runtime never took it.
  await waitFor(() => usr1Pending(worker), { message: "USR1 pending in the worker" });
  assert(!listensOn(worker, INSPECTOR_PORT), "the worker opened the inspector");
  assert(!master.stderr().includes("Debugger listening"), master.stderr());
  assert(!master.stdout().includes("got USR1"), "the runtime's listener never ran");
  assertEquals((await httpRequest(`http://127.0.0.1:${port}/`)).status, 200);
  await waitFor(async () => (await Deno.readTextFile(hookOut).catch(() => "")).includes("SigBlk"));
  assertEquals((await Deno.readTextFile(hookOut)).trim(), `SigBlk:\t${"0".repeat(16)}`);
});

Deno.test('worker_usr1 = "off": the master reopens its log, workers never get USR1', async () => {
  await using dir = await tempDir();
  const { master, log } = await startWith(dir.path, PY_WORKER, [`worker_usr1 = "off"`]);
  await using _ = master;
  await Deno.rename(log, `${log}.1`);
  master.signal("SIGUSR1");
  await waitFor(async () => await Deno.stat(log).then(() => true, () => false), {
    message: "the master to reopen its log",
  });
  // A second worker booted and listening after USR1 was handled: any USR1 sent
  // to the first would have been printed by then (the handler prints at once).
  master.signal("SIGTTIN");
  await waitFor(() => master.stdout().split(" listening").length - 1 >= 2, {
    message: "a second worker to listen",
  });
  assert(!master.stdout().includes("got USR1"), master.stdout());
});

Deno.test(`worker_usr1 = "blocked": serve()'s onUsr1 fires (signalfd); the worker still exits after its drain`, async () => {
  await using dir = await tempDir();
  const app = [Deno.execPath(), "run", "-A", "--quiet", `${REPO_ROOT}/src/worker/testdata/app.ts`];
  const { master, port } = await startWith(dir.path, app, [`worker_usr1 = "blocked"`]);
  await using _ = master;
  const [worker] = await master.waitForChildren(1);
  for (let round = 1; round <= 2; round++) {
    master.signal("SIGUSR1");
    await waitFor(() => master.stdout().split(`pid ${worker} got USR1`).length - 1 === round, {
      message: `onUsr1 to run ${round} time(s)`,
    });
  }
  assert(!listensOn(worker, INSPECTOR_PORT), "the worker opened the inspector");
  assertEquals((await httpRequest(`http://127.0.0.1:${port}/`)).status, 200);
  // A reader asleep in read(2) must not keep the drained worker alive.
  master.signal("SIGHUP"); // a new worker, then TERM to this one
  await waitFor(() => master.stdout().includes("finished"), { message: "the drain to finish" });
  await waitFor(() => !isAlive(worker), { message: "the old worker to exit" });
});
