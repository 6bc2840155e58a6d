/**
 * Shared pieces of the chaos and soak scripts: a raw HTTP/1.0 load loop that
 * classifies every failure (refused at connect vs. broken after connect, with
 * its time span so it can be matched to a kill), master readings, and the
 * PASS/FAIL report. 127.0.0.1 only; every loop is bounded in time and count.
 *
 * @module
 */

import {
  childPids,
  fdCount,
  liveChildren,
  now,
  rssKb,
  sleep,
  stateOf,
  zombieChildren,
} from "../bench/lib.ts";

export * from "../bench/lib.ts";

/** One failed request. */
export interface Failure {
  start: number;
  end: number;
  kind: "refused" | "broken" | "status" | "timeout";
  message: string;
}

/** Counts of a {@link RawLoad} run. */
export interface RawLoadResult {
  ok: number;
  failures: Failure[];
  refused: number;
}

/**
 * `concurrency` loops, each: connect, `GET / HTTP/1.0`, read to EOF, expect
 * 200. A new connection per request, so every request goes through accept().
 * Stops at `stop()`, after `maxSeconds`, or after `maxRequests`.
 */
export class RawLoad {
  #running = false;
  #loops: Promise<void>[] = [];
  #ok = 0;
  #failures: Failure[] = [];
  #sent = 0;

  constructor(
    readonly port: number,
    readonly concurrency = 8,
    readonly maxSeconds = 600,
    readonly maxRequests = 5_000_000,
    readonly requestTimeoutMs = 5000,
  ) {}

  start(): this {
    this.#running = true;
    const deadline = now() + this.maxSeconds * 1000;
    for (let i = 0; i < this.concurrency; i++) this.#loops.push(this.#loop(deadline));
    return this;
  }

  async stop(): Promise<RawLoadResult> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#loops = [];
    return this.snapshot();
  }

  snapshot(): RawLoadResult {
    return {
      ok: this.#ok,
      failures: [...this.#failures],
      refused: this.#failures.filter((f) => f.kind === "refused").length,
    };
  }

  async #loop(deadline: number): Promise<void> {
    const req = new TextEncoder().encode("GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    while (this.#running && now() < deadline && this.#sent < this.maxRequests) {
      this.#sent++;
      const start = now();
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
      } catch (e) {
        this.#fail(start, "refused", e);
        await sleep(5);
        continue;
      }
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          conn.close();
        } catch {
          // closed
        }
      }, this.requestTimeoutMs);
      try {
        await conn.write(req);
        const chunks: Uint8Array[] = [];
        const buf = new Uint8Array(4096);
        while (true) {
          const n = await conn.read(buf);
          if (n === null) break;
          chunks.push(buf.slice(0, n));
        }
        const head = new TextDecoder().decode(chunks[0] ?? new Uint8Array());
        if (/^HTTP\/1\.[01] 200 /.test(head)) this.#ok++;
        else if (head === "") {
          this.#fail(start, "broken", new Error("connection closed, no answer"));
        } else this.#fail(start, "status", new Error(head.split("\r\n")[0]));
      } catch (e) {
        this.#fail(start, timedOut ? "timeout" : "broken", e);
      } finally {
        clearTimeout(timer);
        try {
          conn.close();
        } catch {
          // closed
        }
      }
    }
  }

  #fail(start: number, kind: Failure["kind"], e: unknown): void {
    this.#failures.push({
      start,
      end: now(),
      kind,
      message: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
  }
}

/** What the master looks like from /proc. */
export interface MasterReading {
  fds: number;
  rssKb: number;
  live: number;
  zombies: number;
  /** All descendants (workers and anything they started). */
  descendants: number;
}

/** Read the master's fds, RSS, children and descendants. */
export function readMaster(pid: number): MasterReading {
  let descendants = 0;
  const queue = [pid];
  while (queue.length) {
    for (const c of childPids(queue.shift()!)) {
      if (stateOf(c) !== undefined) descendants++;
      queue.push(c);
    }
  }
  return {
    fds: fdCount(pid),
    rssKb: rssKb(pid),
    live: liveChildren(pid).length,
    zombies: zombieChildren(pid).length,
    descendants,
  };
}

/** `ARBITER_WORKER_ID` of a process, from /proc/PID/environ. */
export function workerIdOf(pid: number): number | undefined {
  try {
    const env = Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0");
    const kv = env.find((e) => e.startsWith("ARBITER_WORKER_ID="));
    return kv ? Number(kv.slice("ARBITER_WORKER_ID=".length)) : undefined;
  } catch {
    return undefined;
  }
}

/** One check of a chaos run. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Print the checks and `PASS name` / `FAIL name`; returns the exit code. */
export function report(name: string, checks: Check[], numbers: Record<string, unknown>): number {
  const pass = checks.every((c) => c.ok);
  console.log(`\n== ${name}`);
  for (const [k, v] of Object.entries(numbers)) console.log(`  ${k}: ${JSON.stringify(v)}`);
  for (const c of checks) console.log(`  [${c.ok ? "ok" : "FAIL"}] ${c.name}: ${c.detail}`);
  console.log(`${pass ? "PASS" : "FAIL"} ${name}`);
  try {
    Deno.mkdirSync("/tmp/arbiter-bench", { recursive: true });
    Deno.writeTextFileSync(
      `/tmp/arbiter-bench/chaos-${name}.json`,
      JSON.stringify({ pass, checks, numbers }, null, 2),
    );
  } catch {
    // best effort
  }
  return pass ? 0 : 1;
}

/** `--name value` from the command line, as a number. */
export function numArg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
