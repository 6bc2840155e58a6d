/**
 * Shared by the benchmark files: where raw numbers go, the options every
 * benchmark takes, logging, and waiting for an arbiter to serve.
 *
 * @module
 */

import { type ArbiterProcess, REPO_ROOT, waitForHttp } from "./lib.ts";

export const OUT_DIR = "/tmp/arbiter-bench";
Deno.mkdirSync(OUT_DIR, { recursive: true });

export interface Args {
  names: string[];
  reps: number;
  write: boolean;
  file: string;
}

export function parseArgs(argv: string[]): Args {
  const a: Args = { names: [], reps: 3, write: true, file: `${REPO_ROOT}/BENCHMARKS.md` };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === "--reps") a.reps = Number(argv[++i]);
    else if (x === "--no-write") a.write = false;
    else if (x === "--file") a.file = argv[++i];
    else if (x.startsWith("-")) throw new Error(`unknown option ${x}`);
    else a.names.push(x);
  }
  return a;
}

export function log(msg: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

export const url = (port: number) => `http://127.0.0.1:${port}/`;

/** Wait until the master logged "generation 1 is ready" and the port answers. */
export async function arbiterReady(p: ArbiterProcess, port: number): Promise<void> {
  await p.waitForLog(/generation 1 is ready/, { timeoutMs: 60_000 });
  await waitForHttp(url(port), { timeoutMs: 30_000 });
}
