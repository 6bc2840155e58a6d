// A stop signal during start-up is handled as the signal table says
// (docs/contract.md, "Signals"; docs/resilience.md, "Signals during start-up"):
// sent at many moments from the master's re-exec on — while it loads, checks
// its config, binds, starts its workers — INT and TERM each stop it with the
// normal log lines and exit 0, never a silent death by the signal.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { arbiterCommand, freePort, logEvent, waitFor } from "./_harness.ts";

const SIGINT_BIT = 1n << 1n;
const SIGCHLD_BIT = 1n << 16n;

/**
 * Whether `pid` runs its re-executed image (src/master/usr1.ts): a thread
 * other than the main one blocks INT but not CHLD, a mask only that image's
 * threads inherit. (Deno blocks every signal, CHLD included, for a moment
 * whenever it starts a thread, in either image; the first image blocks the
 * start-up signals on its main thread alone, just before the re-exec.)
 */
function reExecuted(pid: number): boolean {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/task`)].some(({ name }) => {
      if (name === String(pid)) return false;
      try {
        const status = Deno.readTextFileSync(`/proc/${pid}/task/${name}/status`);
        const mask = BigInt(`0x${/^SigBlk:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"}`);
        return (mask & SIGINT_BIT) !== 0n && (mask & SIGCHLD_BIT) === 0n;
      } catch {
        return false; // a thread that ended meanwhile
      }
    });
  } catch {
    return false;
  }
}

async function stopDuringStart(signal: "SIGINT" | "SIGTERM", delayMs: number): Promise<void> {
  const child = arbiterCommand(
    ["-w", "1", "-b", `127.0.0.1:${freePort()}`, "--", "sleep", "infinity"],
    { stdin: "null", stdout: "null", stderr: "piped" },
  ).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    await waitFor(() => reExecuted(child.pid), { intervalMs: 1, message: "the re-exec" });
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    child.kill(signal);
    const status = await child.status;
    const log = await stderr;
    const what = `${signal} ${delayMs} ms after the re-exec`;
    assertEquals(
      { signal: status.signal, code: status.code },
      { signal: null, code: 0 },
      `${what}: ${log}`,
    );
    assert(logEvent("stop.started").test(log), `${what}: no stop.started in\n${log}`);
    assert(logEvent("master.exiting").test(log), `${what}: no master.exiting in\n${log}`);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await stderr.catch(() => "");
  }
}

// From the re-exec to well after the workers started (~0.3–0.6 s here).
const DELAYS_MS = [0, 0, 1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500];

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} at any moment of start-up stops the master with its logs, exit 0`, async () => {
    for (const delay of DELAYS_MS) await stopDuringStart(signal, delay);
  });
}
