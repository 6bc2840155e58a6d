// The group checks with real processes: a leader that leaves a child behind
// in its group, in our session or in a session of its own.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { signalWorkerGroup, sweepGroup } from "./process_group.ts";
import { readStat } from "../verify/proc.ts";

/**
 * Starts a Python leader that makes its own group (`setpgid`, or `setsid`
 * for a new session), forks a sleeping child, prints the child's pid, and
 * exits when told (a line on stdin) — or stays when `stay`.
 */
async function leaderWithChild(how: "setpgid" | "setsid") {
  const code = `
import os, sys
os.${how === "setsid" ? "setsid()" : "setpgid(0, 0)"}
pid = os.fork()
if pid == 0:
    os.execvp("sleep", ["sleep", "60"])
print(pid, flush=True)
sys.stdin.readline()
`;
  const child = new Deno.Command("python3", {
    args: ["-c", code],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the leader said nothing");
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  const writer = child.stdin.getWriter();
  return {
    leader: child.pid,
    helper: Number(text.trim()),
    /** Lets the leader exit and reaps it. */
    async end() {
      await writer.write(new TextEncoder().encode("\n"));
      await writer.close();
      await child.status;
    },
  };
}

const gone = (pid: number) => {
  const st = readStat(pid);
  return st === undefined || st.state === "Z";
};

async function until(test: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !test(); i++) await new Promise((r) => setTimeout(r, 20));
  assert(test(), "timed out");
}

Deno.test("a leftover group in our session is counted, then SIGTERMed; then it is empty", async () => {
  const g = await leaderWithChild("setpgid");
  await g.end();
  assertEquals(sweepGroup(g.leader, undefined, new Set()), { members: 1 });
  assertEquals(sweepGroup(g.leader, "SIGTERM", new Set()), { members: 1 });
  await until(() => gone(g.helper));
  assertEquals(sweepGroup(g.leader, undefined, new Set()), { members: 0 });
});

Deno.test("a group in another session is never signalled", async () => {
  const g = await leaderWithChild("setsid");
  await g.end();
  try {
    const r = sweepGroup(g.leader, "SIGKILL", new Set());
    assertEquals(r.members, 0);
    assert(r.refused?.includes("another session"), r.refused);
    assert(!gone(g.helper), "left alone");
  } finally {
    Deno.kill(g.helper, "SIGKILL");
  }
});

Deno.test("a group whose number is a live process's pid, or that holds a worker, is refused", async () => {
  const g = await leaderWithChild("setpgid");
  try {
    // The leader is alive: to a sweep (which assumes it was reaped) it is a newcomer.
    assert(sweepGroup(g.leader, "SIGKILL", new Set()).refused?.includes("newer process"));
    await g.end();
    const r = sweepGroup(g.leader, "SIGKILL", new Set([g.helper]));
    assert(r.refused?.includes("another worker"), r.refused);
    assert(!gone(g.helper));
  } finally {
    Deno.kill(g.helper, "SIGKILL");
  }
});

Deno.test("signalWorkerGroup reaches the leader's whole group; not a process without its own", async () => {
  const g = await leaderWithChild("setpgid");
  assert(signalWorkerGroup(g.leader, "SIGTERM"));
  await until(() => gone(g.helper));
  await g.end().catch(() => {});
  assert(!signalWorkerGroup(Deno.pid, "SIGTERM"), "the master's own pid is never a worker's group");
  const plain = new Deno.Command("sleep", { args: ["60"] }).spawn();
  assert(!signalWorkerGroup(plain.pid, "SIGTERM"), "no group of its own: the caller signals it");
  plain.kill("SIGKILL");
  await plain.status;
});
