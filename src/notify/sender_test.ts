/**
 * The sender check with real processes: only the worker's own process tree
 * may speak on its sockets; others are dropped and counted; fds passed along
 * are closed at once.
 */
import { tmpdir } from "node:os";
import { match, ok, strictEqual } from "node:assert/strict";
import { NotifyHub } from "./hub.ts";
import { speaksFor } from "./sender.ts";

const WAIT_MS = 10_000;

/** Collects what the hub reports; `until` waits for a matching report. */
class Reports {
  readonly messages: Record<string, string>[] = [];
  readonly garbage: string[] = [];
  #wake?: () => void;
  onMessage = (_serial: number, fields: Record<string, string>) => {
    this.messages.push(fields);
    this.#wake?.();
  };
  onGarbage = (_serial: number, why: string) => {
    this.garbage.push(why);
    this.#wake?.();
  };
  async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, 200);
      });
      clearTimeout(timer);
    }
  }
}

// Sends, then waits on a barrier (as sd_notify_barrier does), so the sender is
// still alive when the hub checks its ancestry.
const PY_SEND = "import array, os, select, socket, sys\n" +
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n" +
  "s.sendto(sys.argv[2].encode(), sys.argv[1])\n" +
  "r, w = os.pipe()\n" +
  "s.sendmsg([b'BARRIER=1'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [w]).tobytes())], 0, sys.argv[1])\n" +
  "os.close(w)\n" +
  "select.select([r], [], [], 10)\n";

async function run(cmd: string[]): Promise<void> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "null",
    stderr: "piped",
  })
    .output();
  strictEqual(out.code, 0, `${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A process outside this test's own tree would be ideal; a sibling child is the next best. */
function startIdle(): Deno.ChildProcess {
  return new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" }).spawn();
}

Deno.test("speaksFor: the worker itself and its descendants only", async () => {
  const child = startIdle();
  try {
    ok(speaksFor(Deno.pid, Deno.pid));
    ok(speaksFor(child.pid, Deno.pid), "a child speaks for its parent");
    ok(!speaksFor(Deno.pid, child.pid), "a parent does not speak for its child");
    ok(!speaksFor(0, Deno.pid), "pid 0: a sender in another pid namespace");
    ok(!speaksFor(Deno.pid, 1), "nobody speaks for init");
    ok(!speaksFor(2 ** 22 + 12345, Deno.pid), "a pid that does not exist");
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("a sibling's WATCHDOG=1 / STATUS= is dropped and counted; the worker's tree still speaks", async () => {
  const reports = new Reports();
  const hub = await NotifyHub.create(tmpdir(), reports.onMessage, reports.onGarbage);
  const sibling = startIdle();
  try {
    const ep = await hub.open(1);
    // Before the pid is known, nobody speaks for the worker.
    await run(["python3", "-c", PY_SEND, ep.notifySocket, "STATUS=too early"]);
    // (Its BARRIER=1 says nothing, so it is neither checked nor counted.)
    await reports.until(() => hub.droppedMessages === 1, "the first drop");
    // The worker is `sibling`; this test process and its other children are not in its tree.
    hub.setWorkerPid(1, sibling.pid);
    await run(["python3", "-c", PY_SEND, ep.notifySocket, "WATCHDOG=1"]);
    await run(["python3", "-c", PY_SEND, ep.notifySocket, "STATUS=forged"]);
    await reports.until(() => hub.droppedMessages === 3, "two more drops");
    const conn = await Deno.connect({ transport: "unix", path: ep.streamSocket });
    await conn.write(new TextEncoder().encode("WATCHDOG=1\n")).catch(() => 0);
    await reports.until(() => hub.droppedMessages === 4, "the stream connection dropped");
    strictEqual(await conn.read(new Uint8Array(8)).catch(() => null), null, "closed by the hub");
    conn.close();
    strictEqual(reports.messages.length, 0);
    match(
      reports.garbage[0],
      /dropped 1 message\(s\) from a process that is not a worker not yet started/,
    );
    // Now the worker is this process: its grandchild (a shell's child) speaks for it.
    hub.setWorkerPid(1, Deno.pid);
    await run(["sh", "-c", 'python3 -c "$0" "$@"; true', PY_SEND, ep.notifySocket, "READY=1"]);
    await reports.until(() => reports.messages.length === 1, "the real message");
    strictEqual(reports.messages[0].READY, "1");
    strictEqual(hub.droppedMessages, 4);
  } finally {
    sibling.kill("SIGKILL");
    await sibling.status;
    await hub.closeAll();
  }
});

const PY_BARRIER = `
import os, select, socket, sys
r, w = os.pipe()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendmsg([b"STATUS=with an fd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(__import__("array").array("i", [w]))))], 0, sys.argv[1])
os.close(w)
ready, _, _ = select.select([r], [], [], 10)
sys.exit(0 if ready and os.read(r, 1) == b"" else 1)
`;

Deno.test("fds passed with SCM_RIGHTS are closed at once; the message still counts", async () => {
  const reports = new Reports();
  const hub = await NotifyHub.create(tmpdir(), reports.onMessage, reports.onGarbage);
  try {
    const ep = await hub.open(2);
    hub.setWorkerPid(2, Deno.pid);
    await run(["python3", "-c", PY_BARRIER, ep.notifySocket]);
    // The sender exited 0: it saw EOF on its pipe, so the hub closed the fd it got.
    await reports.until(() => reports.messages.length === 1, "the message");
    strictEqual(reports.messages[0].STATUS, "with an fd");
  } finally {
    await hub.closeAll();
  }
});
