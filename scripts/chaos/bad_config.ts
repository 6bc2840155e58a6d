/**
 * Chaos: hot-swap bad configs in and out under load. The master runs from a
 * config file; in each cycle a bad version is written and HUP sent (it must
 * be logged and the old generation kept: same worker pids), then the good
 * one again and HUP (a new generation must become ready). A load loop (new
 * connection per request) runs throughout: nothing may fail.
 *
 *   scripts/deno run -A scripts/chaos/bad_config.ts [--cycles 5]
 *
 * @module
 */

import {
  type Check,
  countLog,
  freePort,
  liveChildren,
  numArg,
  RawLoad,
  readMaster,
  report,
  sleep,
  startArbiter,
  waitFor,
  waitForHttp,
  WSGI_FD,
} from "./_lib.ts";

const cycles = numArg("cycles", 5);
const port = freePort();
const dir = Deno.makeTempDirSync({ prefix: "arbiter-chaos-" });
const file = `${dir}/app.toml`;
const good = [
  `command = ["python3", ${JSON.stringify(WSGI_FD)}]`,
  `workers = 2`,
  `bind = "127.0.0.1:${port}"`,
  `graceful_timeout = 5`,
].join("\n") + "\n";
const bad: Record<string, string> = {
  "TOML syntax error": good.replace("workers = 2", "workers = "),
  "wrong type": good.replace("workers = 2", 'workers = "two"'),
  "unknown key": good + "wrokers = 3\n",
  "bad bind": good.replace(`127.0.0.1:${port}`, "not-an-address"),
  "command not found": good.replace('"python3"', '"/nonexistent/python3"'),
};
Deno.writeTextFileSync(file, good);
await using master = startArbiter(["--config", file]);
await master.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
await waitForHttp(`http://127.0.0.1:${port}/`);
const before = readMaster(master.pid);
const load = new RawLoad(port, 8, cycles * Object.keys(bad).length * 15 + 60).start();
const outcomes: { bad: string; kept: boolean; logged: string; recovered: boolean }[] = [];
let generation = 1;
for (let c = 0; c < cycles && !master.exited; c++) {
  for (const [name, text] of Object.entries(bad)) {
    if (master.exited) break;
    const pids = liveChildren(master.pid).join(",");
    const off = master.logOffset();
    Deno.writeTextFileSync(file, text);
    master.signal("SIGHUP");
    let logged = "";
    try {
      const m = await master.waitForLog(/(ERROR|WARN|FATAL)[^\n]*/, {
        after: off,
        timeoutMs: 5000,
      });
      logged = m[0].slice(0, 160);
    } catch {
      logged = "(nothing logged within 5 s)";
    }
    await sleep(1500); // a generation started by mistake would be ready by now
    const kept = !master.exited && liveChildren(master.pid).join(",") === pids &&
      countLog(master, /generation \d+ is ready/, off) === 0;
    const off2 = master.logOffset();
    Deno.writeTextFileSync(file, good);
    master.signal("SIGHUP");
    let recovered = false;
    try {
      await master.waitForLog(/generation \d+ is ready/, { after: off2, timeoutMs: 15_000 });
      generation++;
      await waitFor(() => liveChildren(master.pid).length === 2, { timeoutMs: 15_000 });
      recovered = true;
    } catch {
      recovered = false;
    }
    outcomes.push({ bad: name, kept, logged, recovered });
  }
}
const result = await load.stop();
await sleep(1000);
const after = master.exited ? undefined : readMaster(master.pid);
const checks: Check[] = [
  { name: "master alive", ok: !master.exited, detail: master.exited ? "exited" : "yes" },
  {
    name: "nothing dropped",
    ok: result.failures.length === 0,
    detail: `${result.ok} ok, ${result.failures.length} failed${
      result.failures.length ? ` (first: ${result.failures[0].message})` : ""
    }`,
  },
];
for (const name of Object.keys(bad)) {
  const os = outcomes.filter((o) => o.bad === name);
  checks.push({
    name: `${name}: old generation kept, then good config applied`,
    ok: os.length === cycles && os.every((o) => o.kept && o.recovered),
    detail: `${os.filter((o) => o.kept).length}/${os.length} kept, ${
      os.filter((o) => o.recovered).length
    }/${os.length} recovered; log: ${os[0]?.logged ?? "-"}`,
  });
}
if (after) {
  checks.push({
    name: "master fds unchanged",
    ok: after.fds === before.fds,
    detail: `${before.fds} → ${after.fds}`,
  });
}
if (!master.exited) master.signal("SIGTERM");
await master.waitExit(30_000).catch(() => {});
Deno.removeSync(dir, { recursive: true });
Deno.exit(report("bad_config", checks, { cycles, generations: generation, before, after }));
