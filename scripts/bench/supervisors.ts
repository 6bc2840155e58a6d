/**
 * What the benchmarks run (re-exported by lib.ts): the apps and where they
 * live, the tools' versions, and starting each supervisor under test
 * (arbiter, Gunicorn, the bare launcher, PM2) on 127.0.0.1.
 *
 * @module
 */

import { type ArbiterProcess, REPO_ROOT, startArbiter, waitFor } from "../../tests/_harness.ts";

// The Python apps import each other: keep __pycache__ out of the checkout.
Deno.env.set("PYTHONDONTWRITEBYTECODE", "1");

/** `scripts/bench/apps`. */
export const APPS: string = `${REPO_ROOT}/scripts/bench/apps`;
/** The Node app (same file under arbiter and PM2). */
export const NODE_APP: string = `${APPS}/node_app.cjs`;
/** The stdlib WSGI server on fd 3. */
export const WSGI_FD: string = `${APPS}/wsgi_fd.py`;
/** The bare launcher: binds one socket, forks N workers. */
export const LAUNCH_PY: string = `${REPO_ROOT}/tests/workers/launch.py`;
/** Where PM2 is installed by setup.sh (also searched on PATH). */
export const DEPS_DIR: string = Deno.env.get("ARBITER_BENCH_DEPS") ?? "/tmp/arbiter-bench-deps";

// ---------------------------------------------------------------------------
// Tools

/** First line of a command's output (stdout, else stderr), or "missing". */
export async function versionOf(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const text = (new TextDecoder().decode(out.stdout) || new TextDecoder().decode(out.stderr))
      .trim();
    return text.split("\n")[0] || "unknown";
  } catch {
    return "missing";
  }
}

/** The pm2 executable: the setup.sh cache first, then PATH. */
export function pm2Bin(): string {
  const cached = `${DEPS_DIR}/node_modules/.bin/pm2`;
  try {
    Deno.statSync(cached);
    return cached;
  } catch {
    return "pm2";
  }
}

/** True if `cmd` runs (`cmd --version` exits). */
export async function haveTool(cmd: string, args = ["--version"]): Promise<boolean> {
  return (await versionOf(cmd, args)) !== "missing";
}

// ---------------------------------------------------------------------------
// Supervisors

/** Arbiter, quiet by default, on 127.0.0.1:port. */
export function startArbiterOn(
  port: number,
  workers: number,
  command: string[],
  extra: string[] = [],
  env: Record<string, string> = {},
): ArbiterProcess {
  return startArbiter([...sharedFlags(port, workers, extra), "--", ...command], { env });
}

/** The flags arbiter and Gunicorn share: `workers`, a bind on 127.0.0.1, a 5 s graceful timeout. */
function sharedFlags(port: number, workers: number, extra: string[]): string[] {
  return ["-w", String(workers), "-b", `127.0.0.1:${port}`, "--graceful-timeout", "5", ...extra];
}

/** Gunicorn's arguments (sync workers) for the WSGI app. */
export function gunicornArgs(port: number, workers: number, extra: string[] = []): string[] {
  return ["--chdir", APPS, ...sharedFlags(port, workers, extra), "wsgi_app:app"];
}

/** How many matches of `re` the master's stderr has after offset `after`. */
export function countLog(proc: ArbiterProcess, re: RegExp, after = 0): number {
  const text = proc.stderr().slice(after);
  return [...text.matchAll(new RegExp(re.source, "g"))].length;
}

/** Wait until the master logged `count` matches of `re` after `after`. */
export function waitForCount(
  proc: ArbiterProcess,
  re: RegExp,
  count: number,
  after = 0,
  timeoutMs = 30_000,
): Promise<number> {
  return waitFor(() => {
    if (proc.exited) throw new Error("master exited");
    const n = countLog(proc, re, after);
    return n >= count ? n : undefined;
  }, { timeoutMs, intervalMs: 10, message: `${count} × ${re}` });
}

/** Gunicorn (sync workers) serving the WSGI app. */
export function startGunicorn(port: number, workers: number, extra: string[] = []): ArbiterProcess {
  return startArbiter([], { cmd: ["gunicorn", ...gunicornArgs(port, workers, extra)] });
}

/** The bare launcher: one socket, N forked workers. */
export function startLauncher(port: number, workers: number, command: string[]): ArbiterProcess {
  return startArbiter([], {
    cmd: [
      "python3",
      LAUNCH_PY,
      "--bind",
      `127.0.0.1:${port}`,
      "--workers",
      String(workers),
      "--",
      ...command,
    ],
  });
}

/** A PM2 daemon of our own (its own PM2_HOME), killed by {@link Pm2.kill}. */
export class Pm2 {
  readonly home: string;
  readonly bin: string;
  constructor(home = `/tmp/arbiter-bench/pm2-${Deno.pid}`) {
    this.home = home;
    this.bin = pm2Bin();
    Deno.mkdirSync(home, { recursive: true });
  }
  env(): Record<string, string> {
    return { ...Deno.env.toObject(), PM2_HOME: this.home };
  }
  async run(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
    const out = await new Deno.Command(this.bin, {
      args,
      env: { ...this.env(), ...extraEnv },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`pm2 ${args.join(" ")} failed:\n${text}`);
    return text;
  }
  /** pids of the app's workers from `pm2 jlist`. */
  async pids(name: string): Promise<number[]> {
    const text = await this.run(["jlist"]);
    const start = text.indexOf("[");
    const list = JSON.parse(text.slice(start)) as { name: string; pid: number }[];
    return list.filter((p) => p.name === name && p.pid > 0).map((p) => p.pid);
  }
  /** The PM2 daemon's pid. */
  daemonPid(): number {
    return Number(Deno.readTextFileSync(`${this.home}/pm2.pid`).trim());
  }
  async kill(): Promise<void> {
    try {
      await this.run(["kill"]);
    } catch {
      // already gone
    }
  }
}
