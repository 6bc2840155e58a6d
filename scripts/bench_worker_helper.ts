/**
 * Throughput of the Deno worker helper (`src/worker/mod.ts`, `node:http` on
 * an inherited fd) against `Deno.serve` on a port of its own, both serving
 * the same tiny handler in one process each, with plain `node:http` on the
 * fd (no Request/Response conversion) as a reference. Alternates the
 * servers for several runs and reports requests per second (median) and
 * the ratios.
 *
 *     ./scripts/deno run -A scripts/bench_worker_helper.ts [--runs 5] [--duration 5]
 *       [--connections 50] [--tool wrk|hey|fetch]
 *
 * The load tool is `wrk` when installed (`apt-get install wrk`), else `hey`,
 * else a fetch loop in this process (slower: it measures the client too).
 * The helper's server is started by `tests/workers/launch.py`, which binds
 * the socket and execs the server with it at fd 3, as arbiter does.
 *
 * @module
 */

import { parseArgs } from "node:util";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SERVE_HELPER = "--serve-helper";
const SERVE_DENO = "--serve-deno";
const SERVE_NODE = "--serve-node";
const BODY = "hello from deno worker 0\n";

// ---------------------------------------------------------------------------
// The two servers (this script re-run in a server mode)

if (Deno.args[0] === SERVE_HELPER) {
  const { serve } = await import("../src/worker/mod.ts");
  serve(() => new Response(BODY), { onListen: () => console.log("listening") });
} else if (Deno.args[0] === SERVE_NODE) {
  const { createServer } = await import("node:http");
  createServer((_req, res) => res.end(BODY)).listen({ fd: 3 }, () => console.log("listening"));
} else if (Deno.args[0] === SERVE_DENO) {
  Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(`listening ${port}`) },
    () => new Response(BODY),
  );
} else if (import.meta.main) {
  await main();
}

// ---------------------------------------------------------------------------
// The benchmark

type Tool = "wrk" | "hey" | "fetch";

interface Server {
  port: number;
  stop(): Promise<void>;
}

/** Start a server process and wait for its port. */
async function startServer(kind: "helper" | "node" | "deno"): Promise<Server> {
  const deno = [Deno.execPath(), "run", "-A", "--quiet", import.meta.filename!];
  const onFd = kind !== "deno";
  const argv = onFd
    ? ["python3", `${ROOT}/tests/workers/launch.py`, "--bind", "127.0.0.1:0", "--", ...deno]
    : deno;
  const mode = { helper: SERVE_HELPER, node: SERVE_NODE, deno: SERVE_DENO }[kind];
  const child = new Deno.Command(argv[0], {
    args: [...argv.slice(1), mode],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).getReader();
  const out = lines(child.stdout);
  const err = lines(child.stderr);
  let outText = "";
  let errText = "";
  let port: number | undefined;
  // launch.py prints the port on stderr; Deno.serve prints it on stdout.
  while (port === undefined) {
    const source = onFd && !/launch: fd 3 = /.test(errText) ? err : out;
    const { value, done } = await source.read();
    if (done) throw new Error(`${kind} server ended:\n${errText}${outText}`);
    if (source === err) errText += value;
    else outText += value;
    const m = onFd
      ? (/listening/.test(outText) ? errText.match(/launch: fd 3 = [\d.]+:(\d+)/) : null)
      : outText.match(/listening (\d+)/);
    if (m) port = Number(m[1]);
  }
  // Keep draining both pipes so the server never blocks on them.
  const drain = (r: ReadableStreamDefaultReader<string>) =>
    (async () => {
      while (!(await r.read()).done) { /* discard */ }
    })().catch(() => {});
  const drained = Promise.all([drain(out), drain(err)]);
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await drained;
    },
  };
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

function installed(name: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return dir !== "" && Deno.statSync(`${dir}/${name}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Requests per second of one load run against `port`. */
async function load(tool: Tool, port: number, seconds: number, conns: number): Promise<number> {
  const url = `http://127.0.0.1:${port}/`;
  if (tool === "wrk") {
    const out = await run("wrk", [`-t2`, `-c${conns}`, `-d${seconds}s`, url]);
    const m = out.match(/Requests\/sec:\s+([\d.]+)/);
    if (!m) throw new Error(`cannot read wrk output:\n${out}`);
    const errors = out.match(/Non-2xx or 3xx responses: (\d+)|Socket errors: .*/);
    if (errors) console.error(`  wrk: ${errors[0]}`);
    return Number(m[1]);
  }
  if (tool === "hey") {
    const out = await run("hey", ["-z", `${seconds}s`, "-c", String(conns), url]);
    const m = out.match(/Requests\/sec:\s+([\d.]+)/);
    if (!m) throw new Error(`cannot read hey output:\n${out}`);
    return Number(m[1]);
  }
  const client = Deno.createHttpClient({});
  const end = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(Array.from({ length: conns }, async () => {
    while (performance.now() < end) {
      const res = await fetch(url, { client });
      await res.arrayBuffer();
      if (res.ok) count++;
    }
  }));
  client.close();
  return count / seconds;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "5" },
      duration: { type: "string", default: "5" },
      connections: { type: "string", default: "50" },
      tool: { type: "string" },
    },
  });
  const runs = Number(values.runs);
  const seconds = Number(values.duration);
  const conns = Number(values.connections);
  const tool: Tool = (values.tool as Tool | undefined) ??
    (installed("wrk") ? "wrk" : installed("hey") ? "hey" : "fetch");

  const servers = {
    helper: await startServer("helper"),
    node: await startServer("node"),
    deno: await startServer("deno"),
  };
  const results = { helper: [] as number[], node: [] as number[], deno: [] as number[] };
  try {
    // Warm up each (JIT), then alternate so drift hits all alike.
    for (const server of Object.values(servers)) await load(tool, server.port, 1, conns);
    for (let i = 0; i < runs; i++) {
      for (const name of ["helper", "node", "deno"] as const) {
        const rps = await load(tool, servers[name].port, seconds, conns);
        results[name].push(rps);
        console.error(`run ${i + 1}/${runs} ${name}: ${rps.toFixed(0)} req/s`);
      }
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
  }
  const h = median(results.helper);
  const n = median(results.node);
  const d = median(results.deno);
  console.log(
    `tool: ${tool}, ${conns} connections, ${runs} runs of ${seconds} s each, ` +
      `${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}`,
  );
  console.log(`worker helper (node:http on fd 3): ${h.toFixed(0)} req/s (median)`);
  console.log(`plain node:http on fd 3:           ${n.toFixed(0)} req/s (median)`);
  console.log(`Deno.serve (own port):             ${d.toFixed(0)} req/s (median)`);
  console.log(`helper / Deno.serve:               ${(h / d).toFixed(2)}`);
  console.log(`helper / plain node:http:          ${(h / n).toFixed(2)}`);
}
