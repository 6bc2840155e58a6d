// USR1 never opens Deno's inspector in a `deno run` master (src/master/usr1.ts,
// https://github.com/denoland/deno/issues/35738), and still reopens logs and reaches the workers.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type ArbiterProcess, freePort, startArbiter, waitFor } from "./_harness.ts";
import { generationReady, PY_WORKER, startServing, tempDir } from "./_workers.ts";
import { blocksUsr1, everyThreadBlocksUsr1 } from "../src/master/usr1.ts";
import { INSPECTOR_PORT, listensOn } from "./_inspector.ts";

function assertNoInspector(master: { pid: number; stderr(): string }): void {
  assert(!listensOn(master.pid, INSPECTOR_PORT), "the master listens on the inspector port");
  assert(!master.stderr().includes("Debugger listening"), master.stderr());
}

const count = (text: string, what: string) => text.split(what).length - 1;
const usr1Count = (text: string) => count(text, "got USR1");

/** A worker handles USR1 once it says it listens (before, USR1 may find it booting). */
async function workersListening(master: ArbiterProcess, n: number): Promise<void> {
  await waitFor(() => count(master.stdout(), " listening") >= n, {
    message: `${n} worker(s) to listen`,
  });
}

async function sendUsr1(master: ArbiterProcess, n: number) {
  const before = usr1Count(master.stdout());
  master.signal("SIGUSR1");
  await waitFor(() => usr1Count(master.stdout()) >= before + n, {
    message:
      `${n} more worker(s) to get USR1 (had ${before})\n${master.stdout()}\n${master.stderr()}`,
  });
}

Deno.test("USR1 under deno run: no inspector, logs reopened, workers and hooks get a clean mask", async () => {
  await using dir = await tempDir();
  const port = freePort();
  const log = `${dir.path}/arbiter.log`;
  const hookOut = `${dir.path}/hook-sigblk`;
  const config = `${dir.path}/app.toml`;
  await Deno.writeTextFile(
    config,
    [
      `command = ${JSON.stringify(PY_WORKER)}`,
      `workers = 2`,
      `bind = "127.0.0.1:${port}"`,
      `log_file = ${JSON.stringify(log)}`,
      `when_ready = ["sh", "-c", "grep SigBlk /proc/self/status > \\"$1\\"", "sh", ${
        JSON.stringify(hookOut)
      }]`,
    ].join("\n"),
  );
  await using master = startArbiter(["--config", config]);
  await waitFor(async () =>
    (await Deno.readTextFile(log).catch(() => "")).includes("generation 1 is ready")
  );
  await workersListening(master, 2);
  // Re-executed in place: the pid we started is the master, and its log says so.
  assert((await Deno.readTextFile(log)).includes(`master started (pid ${master.pid})`));
  assert(everyThreadBlocksUsr1(master.pid), "every thread of the master blocks USR1");

  const workers = await master.waitForChildren(2);
  for (const pid of workers) {
    assertEquals(
      /^SigBlk:\s*(\w+)$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1],
      "0".repeat(16),
    );
  }
  await waitFor(async () => (await Deno.readTextFile(hookOut).catch(() => "")).includes("SigBlk"));
  assert(!blocksUsr1(await Deno.readTextFile(hookOut)));
  assertEquals((await Deno.readTextFile(hookOut)).trim(), `SigBlk:\t${"0".repeat(16)}`);

  await Deno.rename(log, `${log}.1`);
  for (let round = 0; round < 3; round++) await sendUsr1(master, 2);
  master.signal("SIGTTIN"); // a line that must land in the new file
  await waitFor(async () => (await Deno.readTextFile(log).catch(() => "")).includes("SIGTTIN"));
  assertNoInspector(master);
});

Deno.test("USR2 then USR1: the upgraded image keeps USR1 away from the inspector", async () => {
  const port = freePort();
  await using master = await startServing(PY_WORKER, { port, workers: 1 });
  master.signal("SIGUSR2");
  await master.waitForEvent("upgrade.done");
  await master.waitForLog(generationReady(2));
  await workersListening(master, 2); // the first generation's worker, then the new one
  assert(everyThreadBlocksUsr1(master.pid), "every thread of the new image blocks USR1");
  await sendUsr1(master, 1);
  await sendUsr1(master, 1);
  assertNoInspector(master);
});
