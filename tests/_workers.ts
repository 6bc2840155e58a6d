/**
 * Worker commands and small shared steps for the integration tests.
 *
 * @module
 */

import {
  type ArbiterProcess,
  isAlive,
  isWorkerProgram,
  logEvent,
  REPO_ROOT,
  startArbiter,
  waitFor,
  waitForHttp,
  WORKERS_DIR,
} from "./_harness.ts";

/** The absolute path of the executable `name` on PATH (or beside this Deno), or undefined. */
export function which(name: string): string | undefined {
  const denoDir = Deno.execPath().replace(/\/[^/]*$/, "");
  for (const dir of [denoDir, ...(Deno.env.get("PATH") ?? "").split(":")]) {
    if (dir === "") continue;
    try {
      const path = `${dir}/${name}`;
      const info = Deno.statSync(path);
      if (info.isFile && (info.mode ?? 0) & 0o111) return path;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/**
 * `hups` rolling reloads, one after the other: HUP, wait until the next
 * generation is ready, then until every worker of the one before has exited.
 */
export async function reloadGenerations(arbiter: ArbiterProcess, hups: number): Promise<void> {
  for (let generation = 2; generation <= hups + 1; generation++) {
    const old = arbiter.children().filter(isWorkerProgram);
    arbiter.signal("SIGHUP");
    await arbiter.waitForLog(generationReady(generation), { timeoutMs: 30_000 });
    // The old generation drains while the load goes on.
    await waitFor(() => old.every((pid) => !isAlive(pid)), {
      timeoutMs: 15_000,
      message: `generation ${generation - 1} to exit`,
    });
  }
}

/** Builds examples/go into `dir`; returns the command that runs it. */
export async function buildGoExample(dir: string): Promise<string[]> {
  const out = await new Deno.Command("go", {
    args: ["build", "-o", `${dir}/app`, "."],
    cwd: `${REPO_ROOT}/examples/go`,
    env: { GOFLAGS: "-mod=mod" },
    stdin: "null",
  }).output();
  if (!out.success) throw new Error(`go build: ${new TextDecoder().decode(out.stderr)}`);
  return [`${dir}/app`];
}

/** The Python worker (standard library, `socket.socket(fileno=3)`). */
export const PY_WORKER = ["python3", `${WORKERS_DIR}/py_worker.py`];
/** The Deno worker (`node:http` `listen({fd: 3})`). */
export const DENO_WORKER = [Deno.execPath(), "run", "-A", `${WORKERS_DIR}/deno_http.ts`];

/** The master's log line once every worker of generation `n` is ready (either log format). */
export const generationReady = (n: number): RegExp =>
  logEvent("generation.ready", new RegExp(`(?:generation ${n} |"generation":${n}\\b)`));

/**
 * Starts a master on a free loopback port with `workers` copies of `command`
 * and waits until the whole first generation is ready and answering.
 */
export async function startServing(
  command: string[],
  opts: { workers?: number; port: number; args?: string[]; env?: Record<string, string> },
): Promise<ArbiterProcess> {
  const master = startArbiter([
    "-w",
    String(opts.workers ?? 2),
    "-b",
    `127.0.0.1:${opts.port}`,
    ...(opts.args ?? []),
    "--",
    ...command,
  ], { env: opts.env });
  await master.waitForLog(generationReady(1), { timeoutMs: 20_000 });
  await waitForHttp(`http://127.0.0.1:${opts.port}/`);
  return master;
}

/** A fresh temporary directory, removed by the returned disposer. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "arbiter-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}
