/**
 * Chaos: inherited state and notify sockets that lie (docs/contract.md, "Security").
 *
 * 1. Forged upgrade state: a fresh master is started with
 *    `ARBITER_UPGRADE_STATE` forged every way a caller can (JSON in the
 *    variable — the old attack —, an unsealed memfd, a memfd with another name,
 *    and a sealed memfd made by the same user), naming as its notify directory a
 *    victim directory, a symlink to one, a look-alike `arbiter-*` directory
 *    full of files, `/tmp`, and relative or `..` paths. Each time: the master
 *    serves, and not one file anywhere is gone.
 * 2. Sibling notify: from outside the worker's process tree (as a sibling
 *    worker of the same user could, after reading /proc/<pid>/environ), a
 *    bounded burst of `READY=1`, `WATCHDOG=1`, `STATUS=` and fd-passing
 *    datagrams plus stream connections to every worker's sockets. The master
 *    drops them all (debug log), its fd count does not grow, the workers keep
 *    their watchdog, and an in-place upgrade (USR2) still works afterwards.
 *
 *   scripts/deno run -A scripts/chaos/forged_state.ts
 *
 * @module
 */

import {
  type Check,
  freePort,
  liveChildren,
  MAIN_TS,
  readMaster,
  REPO_ROOT,
  report,
  startArbiter,
  waitFor,
  waitForHttp,
} from "./_lib.ts";

const PY_WORKER = ["python3", `${REPO_ROOT}/tests/workers/py_worker.py`];
const FORGE = `${REPO_ROOT}/tests/workers/forge_upgrade_state.py`;
const checks: Check[] = [];
const base = Deno.makeTempDirSync({ prefix: "arbiter-chaos-forged-" });

/** Every file and directory under `dir`, for before/after comparison. */
function tree(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    out.push(p);
    if (e.isDirectory && !e.isSymlink) out.push(...tree(p));
  }
  return out.sort();
}

// ---- 1. forged upgrade state ----
const victim = `${base}/victim`;
Deno.mkdirSync(`${victim}/deep/er`, { recursive: true });
Deno.writeTextFileSync(`${victim}/deep/er/data`, "precious");
const lookalike = `${base}/arbiter-lookalike`;
Deno.mkdirSync(`${lookalike}/sub`, { recursive: true });
Deno.writeTextFileSync(`${lookalike}/1.sock`, "not a socket");
Deno.writeTextFileSync(`${lookalike}/sub/x`, "x");
Deno.chmodSync(lookalike, 0o711);
const link = `${base}/arbiter-link`;
Deno.symlinkSync(victim, link);
const before = tree(base);
const tmpBefore = Deno.statSync("/tmp").mtime?.getTime();
const dirs = [victim, link, lookalike, "/tmp", `${lookalike}/../victim`, "victim", ""];
const modes = ["json", "unsealed", "wrong-name", "sealed"];
let runs = 0;
let served = 0;
for (const mode of modes) {
  for (const dir of dirs) {
    const port = freePort();
    await using master = startArbiter(["-w", "1", "-b", `127.0.0.1:${port}`, "--", ...PY_WORKER], {
      cmd: ["python3", FORGE, mode, dir, Deno.execPath(), "run", "-A", "--quiet", MAIN_TS],
    });
    runs++;
    try {
      await master.waitForLog(/generation \d+ is ready/, { timeoutMs: 30_000 });
      await waitForHttp(`http://127.0.0.1:${port}/`);
      served++;
    } catch {
      console.log(`  ${mode} ${dir}: did not serve:\n${master.stderr().slice(-600)}`);
    }
    master.signal("SIGTERM");
    await master.waitExit(30_000).catch(() => {});
  }
}
const after = tree(base);
checks.push({
  name: "forged state: every master served",
  ok: served === runs,
  detail: `${served}/${runs}`,
});
checks.push({
  name: "forged state: nothing deleted",
  ok: JSON.stringify(before) === JSON.stringify(after),
  detail: `${before.length} paths before, ${after.length} after`,
});
checks.push({
  name: "forged state: /tmp itself untouched",
  ok: (() => {
    try {
      return Deno.statSync("/tmp").isDirectory && tmpBefore !== undefined;
    } catch {
      return false;
    }
  })(),
  detail: "still a directory",
});

// ---- 2. sibling notify ----
const port = freePort();
await using master = startArbiter(
  [
    "-w",
    "2",
    "-b",
    `127.0.0.1:${port}`,
    "--ready",
    "notify",
    "--timeout",
    "3",
    "--log-level",
    "debug",
    "--",
    ...PY_WORKER,
  ],
  { env: { NOTIFY_READY: "1", WATCHDOG_PING: "1" } },
);
await master.waitForLog(/generation 1 is ready/, { timeoutMs: 30_000 });
await waitForHttp(`http://127.0.0.1:${port}/`);
const workers = liveChildren(master.pid);
const fdsBefore = readMaster(master.pid).fds;
const targets = workers.flatMap((pid) => {
  const env = Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0");
  const get = (k: string) => env.find((kv) => kv.startsWith(`${k}=`))?.slice(k.length + 1);
  return [[get("NOTIFY_SOCKET"), get("ARBITER_NOTIFY_STREAM")]];
});
const PY_FLOOD = `
import array, os, socket, sys, time
n = 0
deadline = time.time() + 3
paths = sys.argv[1:]
while time.time() < deadline and n < 20000:
    for i in range(0, len(paths), 2):
        d, st = paths[i], paths[i + 1]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        r, w = os.pipe()
        for m in (b"READY=1", b"WATCHDOG=1", b"STATUS=forged", b"WATCHDOG=trigger"):
            try:
                s.sendmsg([m], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]).tobytes())], 0, d)
                n += 1
            except OSError:
                pass
        os.close(r); os.close(w); s.close()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(st); c.sendall(b"WATCHDOG=1\\n"); n += 1
        except OSError:
            pass
        c.close()
print(n)
`;
const flood = await new Deno.Command("python3", {
  args: ["-c", PY_FLOOD, ...targets.flat() as string[]],
  stdout: "piped",
  stderr: "piped",
}).output();
const sent = Number(new TextDecoder().decode(flood.stdout).trim());
let dropLogged = false;
try {
  await master.waitForLog(/ignored: dropped \d+ message\(s\)/, { timeoutMs: 5000 });
  dropLogged = true;
} catch { /* reported below */ }
// Three watchdog periods: workers that lost their watchdog would be killed by now.
await new Promise((r) => setTimeout(r, 9000));
const fdsAfter = readMaster(master.pid).fds;
const same = JSON.stringify(liveChildren(master.pid).sort()) === JSON.stringify(workers.sort());
checks.push({ name: "sibling: forged messages sent", ok: sent > 0, detail: `${sent}` });
checks.push({ name: "sibling: drops logged", ok: dropLogged, detail: String(dropLogged) });
checks.push({
  name: "sibling: workers untouched (none killed by a forged WATCHDOG=trigger or a lost watchdog)",
  ok: same &&
    !/timed out|watchdog/i.test(
      master.stderr().split("\n").filter((l) => !/DEBUG/.test(l)).join("\n"),
    ),
  detail: `${workers.join(",")} → ${liveChildren(master.pid).join(",")}`,
});
checks.push({
  name: "sibling: master fds did not grow (passed fds closed)",
  ok: fdsAfter <= fdsBefore,
  detail: `${fdsBefore} → ${fdsAfter}`,
});
// An in-place upgrade still works afterwards.
master.signal("SIGUSR2");
let upgraded = false;
try {
  await master.waitForLog(/re-executed in place/, { timeoutMs: 30_000 });
  await master.waitForLog(/generation 2 is ready/, { timeoutMs: 30_000 });
  await waitFor(() => workers.every((pid) => !liveChildren(master.pid).includes(pid)), {
    timeoutMs: 30_000,
  });
  upgraded = true;
} catch { /* reported below */ }
checks.push({ name: "USR2 still works", ok: upgraded, detail: String(upgraded) });
master.signal("SIGTERM");
const code = (await master.waitExit(30_000).catch(() => ({ code: -1 }))).code;
checks.push({ name: "clean stop", ok: code === 0, detail: `exit ${code}` });
Deno.removeSync(base, { recursive: true });
Deno.exit(report("forged_state", checks, { runs, sent, fdsBefore, fdsAfter }));
