/**
 * "Stop under load" and "shutdown_delay under load", side by side in one run
 * (BENCHMARKS.md, section 7): eight closed-loop clients on 127.0.0.1, then
 * TERM to the supervisor; each round counts the requests that were lost
 * after their connection was established (reset or closed unanswered), the
 * answered ones and the refused connects. Medians over `--reps` rounds.
 *
 *     ./scripts/deno run -A scripts/bench/stop_under_load.ts [--reps 3] [--before REV]
 *
 * Rows: arbiter and Gunicorn with the same WSGI app (gunicorn's sync worker,
 * one per arbiter worker), a new connection per request; arbiter (the Deno
 * example) and Gunicorn (gthread) with keep-alive; and arbiter with
 * `shutdown_delay = 2`, counting what was answered after TERM; then the
 * first row's arbiter with CAP_NET_ADMIN removed from its bounding set
 * (`setpriv`), so the kernel refuses it the handshake filter and it shrinks
 * the accept queues instead; with `--before REV`, the same for arbiter at
 * git revision REV (unpacked with git archive into a temporary directory), to measure a
 * master that had no fallback. Bounded: each
 * client loop stops at its first refused connect or after 100,000 requests,
 * each round within a minute.
 *
 * @module
 */

import {
  APPS,
  freePort,
  gunicornArgs,
  MAIN_TS,
  median,
  REPO_ROOT,
  startArbiter,
  waitForHttp,
} from "./lib.ts";
import { StopLoad } from "../../tests/_stop_load.ts";

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i < 0 ? undefined : Deno.args[i + 1];
}
const reps = Number(option("--reps") || 3);
const before = option("--before");
const WITHOUT_NET_ADMIN = ["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"];
const DENO_DIR = Deno.execPath().replace(/\/[^/]*$/, "");
const ENV = { PATH: `${DENO_DIR}:${Deno.env.get("PATH") ?? ""}` };

interface Row {
  name: string;
  connection: "close" | "keep-alive";
  /** Starts the supervisor on `port`; returns what TERM goes to and how to wait for its end. */
  start: (port: number, dir: string) => Promise<{ pid: number; done: Promise<unknown> }>;
}

function gunicorn(port: number, extra: string[]) {
  const child = new Deno.Command("gunicorn", {
    args: gunicornArgs(port, 2, extra),
    stdout: "null",
    stderr: "null",
  }).spawn();
  return { pid: child.pid, done: child.status };
}

/** `cmd`: what runs the master instead of `deno run -A main.ts` (a wrapper, another checkout). */
async function arbiter(port: number, args: string[], cmd?: string[]) {
  const master = startArbiter(["-b", `127.0.0.1:${port}`, "--graceful-timeout", "5", ...args], {
    env: ENV,
    cmd,
  });
  await master.waitForLog(/generation 1 is ready/, { timeoutMs: 30_000 });
  return {
    pid: master.pid,
    done: master.waitExit(60_000).finally(() => master[Symbol.asyncDispose]()),
  };
}

const GUNICORN_IN_ARBITER = [
  "-w",
  "2",
  "--",
  "gunicorn",
  "--chdir",
  APPS,
  "-w",
  "1",
  "wsgi_app:app",
];
const DENO_EXAMPLE = ["--config", `${REPO_ROOT}/examples/deno/app.toml`];

const ROWS: Row[] = [
  {
    name: "arbiter (gunicorn -w 1 per worker)",
    connection: "close",
    start: (p) => arbiter(p, GUNICORN_IN_ARBITER),
  },
  {
    name: "gunicorn -w 2 (sync)",
    connection: "close",
    start: (p) => Promise.resolve(gunicorn(p, [])),
  },
  {
    name: "arbiter (examples/deno)",
    connection: "keep-alive",
    start: (p) => arbiter(p, DENO_EXAMPLE),
  },
  {
    name: "gunicorn -w 2 -k gthread --threads 4",
    connection: "keep-alive",
    start: (p) =>
      Promise.resolve(gunicorn(p, ["-k", "gthread", "--threads", "4", "--keep-alive", "5"])),
  },
  {
    name: "arbiter (gunicorn -w 1 per worker), shutdown_delay = 2",
    connection: "close",
    start: async (p, dir) => {
      await Deno.writeTextFile(`${dir}/delay.toml`, 'command = ["true"]\nshutdown_delay = 2\n');
      return await arbiter(p, ["--config", `${dir}/delay.toml`, ...GUNICORN_IN_ARBITER]);
    },
  },
];

const dir = await Deno.makeTempDir({ prefix: "arbiter-bench-stop-" });
const denoMain = (main: string) => [Deno.execPath(), "run", "-A", "--quiet", main];
ROWS.push({
  name: "arbiter (gunicorn -w 1 per worker), without CAP_NET_ADMIN",
  connection: "close",
  start: (p) => arbiter(p, GUNICORN_IN_ARBITER, [...WITHOUT_NET_ADMIN, ...denoMain(MAIN_TS)]),
});
if (before) {
  const checkout = `${dir}/before`;
  await Deno.mkdir(checkout);
  const archive = `git -C "$1" archive "$2" | tar -x -C "$3"`;
  const args = ["-c", archive, "sh", REPO_ROOT, before, checkout];
  if (!(await new Deno.Command("sh", { args }).output()).success) {
    throw new Error(`--before ${before}: git archive of that revision failed`);
  }
  ROWS.push({
    name: `arbiter at ${before} (gunicorn -w 1 per worker), without CAP_NET_ADMIN`,
    connection: "close",
    start: (p) =>
      arbiter(p, GUNICORN_IN_ARBITER, [...WITHOUT_NET_ADMIN, ...denoMain(`${checkout}/main.ts`)]),
  });
}
console.log(
  "| supervisor | connections | lost after connecting | answered after TERM | refused connects | stop took (s) |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: |");
for (const row of ROWS) {
  const lost: number[] = [], after: number[] = [], refused: number[] = [], took: number[] = [];
  for (let r = 0; r < reps; r++) {
    const port = freePort();
    const server = await row.start(port, dir);
    await waitForHttp(`http://127.0.0.1:${port}/`);
    const load = new StopLoad({ port, connection: row.connection, concurrency: 8 });
    await load.answered(500);
    const before = load.result.answered;
    const t0 = performance.now();
    Deno.kill(server.pid, "SIGTERM");
    await server.done;
    took.push((performance.now() - t0) / 1000);
    const result = await load.done();
    lost.push(result.lost);
    after.push(result.answered - before);
    refused.push(result.refused);
  }
  console.log(
    `| ${row.name} | ${row.connection} | ${median(lost)} (max ${Math.max(...lost)}) | ${
      median(after)
    } | ${median(refused)} | ${median(took).toFixed(1)} |`,
  );
}
await Deno.remove(dir, { recursive: true });
