/**
 * `arbiter verify` end to end: the real command, run as a user would, on
 * workers whose verdict is known — a Python worker that follows the whole
 * contract (every check passes, exit 0), the same worker made to break it
 * (it resets its connections on TERM and leaves a daemon behind; it never
 * sends READY=1), and examples/python, which already loses nothing on HUP.
 * The runs go in parallel (verify mostly waits on the worker), then each
 * verdict is asserted in its own step.
 */

import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { REPO_ROOT, startArbiter, WORKERS_DIR } from "./_harness.ts";
import { tempDir } from "./_workers.ts";

interface Row {
  id: string;
  status: "pass" | "fail" | "n/a";
  evidence: string;
  fix?: string;
}

interface Verdict {
  code: number;
  report?: { ok: boolean; checks: Row[] };
  stderr: string;
  stdout: string;
}

/** Runs `arbiter verify --json ARGS` to the end. */
async function verify(args: string[], cwd = REPO_ROOT): Promise<Verdict> {
  await using run = startArbiter(["verify", "--json", "--reloads", "1", ...args], { cwd });
  const status = await run.waitExit(150_000);
  let report: Verdict["report"];
  try {
    report = JSON.parse(run.stdout());
  } catch { /* a usage error prints no report */ }
  return { code: status.code, report, stderr: run.stderr(), stdout: run.stdout() };
}

function row(v: Verdict, id: string): Row {
  const found = v.report?.checks.find((c) => c.id === id);
  ok(found, `no row ${id} in the report\n${v.stdout}\n${v.stderr}`);
  return found;
}

function expectStatus(v: Verdict, id: string, status: Row["status"]): Row {
  const r = row(v, id);
  assertEquals(r.status, status, `${id}: ${JSON.stringify(r)}\n--- stderr ---\n${v.stderr}`);
  return r;
}

const python = ["python3", `${WORKERS_DIR}/verify_worker.py`];

Deno.test("arbiter verify: good, bad and example workers get the right verdicts", async (t) => {
  await using dir = await tempDir();
  const config = async (name: string, lines: string[]) => {
    const path = `${dir.path}/${name}.toml`;
    await Deno.writeTextFile(
      path,
      [`command = ${JSON.stringify(python)}`, 'ready = "notify"', ...lines].join("\n") + "\n",
    );
    return path;
  };
  const good = config("good", ["workers = 2", "timeout = 5", "graceful_timeout = 10"]);
  const bad = config("bad", [
    "workers = 2",
    "graceful_timeout = 5",
    'env = { VERIFY_MODE = "reset-on-term", LEAK = "1" }',
  ]);
  const silent = config("no-ready", ["boot_timeout = 1.5", 'env = { VERIFY_MODE = "no-ready" }']);
  const runs = {
    good: verify(["--config", await good]),
    bad: verify(["--config", await bad]),
    silent: verify(["--config", await silent]),
    python: verify(["--config", "examples/python/app.toml"]),
  };
  // Settle every run before asserting, so a failed step leaves nothing running.
  await Promise.allSettled(Object.values(runs));

  await t.step("a worker that follows the contract passes every check and exits 0", async () => {
    const v = await runs.good;
    for (const c of v.report?.checks ?? []) expectStatus(v, c.id, "pass");
    assertEquals(v.report?.checks.length, 10);
    assertEquals(v.code, 0, v.stderr);
    match(row(v, "watchdog").evidence, /aborted and replaced it/);
    match(row(v, "hup-keepalive").evidence, /0 failed/);
  });

  await t.step("a worker that resets connections on TERM and leaks a daemon fails", async () => {
    const v = await runs.bad;
    assertEquals(v.code, 1, v.stderr);
    const inflight = expectStatus(v, "term-inflight", "fail");
    match(inflight.evidence, /reset/);
    ok(inflight.fix);
    expectStatus(v, "term-open", "fail");
    const left = expectStatus(v, "leftovers", "fail");
    match(left.evidence, /sleep 300.*orphaned/);
    expectStatus(v, "ready", "pass");
    expectStatus(v, "fd3", "pass");
  });

  await t.step("a worker that never sends READY=1 fails readiness", async () => {
    const v = await runs.silent;
    assertEquals(v.code, 1, v.stderr);
    const ready = expectStatus(v, "ready", "fail");
    match(ready.evidence, /sent no READY=1 within 1\.5 s/);
    match(ready.fix ?? "", /READY=1/);
    match(expectStatus(v, "hup-close", "n/a").evidence, /never became ready/);
    expectStatus(v, "leftovers", "pass");
  });

  await t.step("examples/python loses nothing on HUP and drains on TERM", async () => {
    const v = await runs.python;
    for (const id of ["fd3", "ready", "hup-close", "hup-keepalive", "term-inflight", "term-open"]) {
      expectStatus(v, id, "pass");
    }
    expectStatus(v, "term-exit", "pass");
    expectStatus(v, "leftovers", "pass");
  });
});

Deno.test("arbiter verify: usage and config mistakes exit 2 before anything starts", async () => {
  const noCommand = await verify([]);
  assertEquals(noCommand.code, 2);
  match(noCommand.stderr, /no worker command/);
  const badReloads = await verify(["--reloads", "0", "--", "python3", "x.py"]);
  assertEquals(badReloads.code, 2);
  match(badReloads.stderr, /--reloads: expected an integer from 1 to 20/);
});
