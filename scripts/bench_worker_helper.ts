/**
 * Throughput of the Deno worker helper (`serve()` from `src/worker/mod.ts`)
 * on both of its transports — the native path (`Deno.serve`'s own listener
 * with the inherited socket swapped in) and the `node:http` fallback —
 * beside plain `Deno.serve` on a port of its own and plain `node:http` on
 * fd 3 (no Request/Response conversion), all serving the same tiny handler,
 * one process each. Loads them in turn, with keep-alive and with a new
 * connection per request, for several runs, and reports medians of requests
 * per second and of requests per CPU-second of the server process (its
 * utime + stime from /proc), with ratios to `Deno.serve`.
 *
 *     ./scripts/deno run -A scripts/bench_worker_helper.ts [--runs 5] [--duration 5]
 *       [--connections 50] [--tool wrk|hey|fetch]
 *
 * The load tool is `wrk` when installed (`apt-get install wrk`), else `hey`,
 * else a fetch loop in this process (slower: it measures the client too).
 * The fd servers are started by `tests/workers/launch.py`, which binds the
 * socket and execs the server with it at fd 3, as arbiter does.
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
// The servers (this script re-run in a server mode)

if (Deno.args[0] === SERVE_HELPER) {
  const { serve } = await import("../src/worker/mod.ts");
  serve(() => new Response(BODY), {
    transport: Deno.args[1] as "native" | "node",
    onListen: () => console.log("listening"),
  });
} else if (Deno.args[0] === SERVE_NODE) {
  const { createServer } = await import("node:http");
  createServer((_req, res) => res.end(BODY)).listen({ fd: 3 }, () => console.log("listening"));
} else if (Deno.args[0] === SERVE_DENO) {
  Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(`listening ${port}`) },
    () => new Response(BODY),
  );
}

// ---------------------------------------------------------------------------
// The benchmark

type Tool = "wrk" | "hey" | "fetch";
type Kind = "native" | "fallback" | "nodefd" | "deno";
type Mode = "keep-alive" | "new connection";

const LABELS: Record<Kind, string> = {
  native: "serve(), native path (Deno.serve on fd 3)",
  fallback: "serve(), node:http fallback",
  nodefd: "plain node:http on fd 3, no conversion",
  deno: "plain Deno.serve on a port of its own",
};

interface Server {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Start a server process and wait for its port. */
async function startServer(kind: Kind): Promise<Server> {
  const deno = [Deno.execPath(), "run", "-A", "--quiet", import.meta.filename!];
  const onFd = kind !== "deno";
  const argv = onFd
    ? ["python3", `${ROOT}/tests/workers/launch.py`, "--bind", "127.0.0.1:0", "--", ...deno]
    : deno;
  const mode = {
    native: [SERVE_HELPER, "native"],
    fallback: [SERVE_HELPER, "node"],
    nodefd: [SERVE_NODE],
    deno: [SERVE_DENO],
  }[kind];
  const child = new Deno.Command(argv[0], {
    args: [...argv.slice(1), ...mode],
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
  if (/arbiter worker:/.test(errText)) throw new Error(`${kind}: ${errText}`);
  // Keep draining both pipes so the server never blocks on them.
  const drain = (r: ReadableStreamDefaultReader<string>) =>
    (async () => {
      while (!(await r.read()).done) { /* discard */ }
    })().catch(() => {});
  const drained = Promise.all([drain(out), drain(err)]);
  return {
    port,
    pid: child.pid, // launch.py execs the server in place: same pid
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await drained;
    },
  };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks, 100 Hz on Linux
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
async function load(
  tool: Tool,
  port: number,
  seconds: number,
  conns: number,
  mode: Mode,
): Promise<number> {
  const url = `http://127.0.0.1:${port}/`;
  const close = mode === "new connection";
  if (tool === "wrk") {
    const header = close ? ["-H", "Connection: close"] : [];
    const out = await run("wrk", [`-t2`, `-c${conns}`, `-d${seconds}s`, ...header, url]);
    const m = out.match(/Requests\/sec:\s+([\d.]+)/);
    if (!m) throw new Error(`cannot read wrk output:\n${out}`);
    const errors = out.match(/Non-2xx or 3xx responses: (\d+)|Socket errors: .*/);
    if (errors) console.error(`  wrk: ${errors[0]}`);
    return Number(m[1]);
  }
  if (tool === "hey") {
    const extra = close ? ["-disable-keepalive"] : [];
    const out = await run("hey", ["-z", `${seconds}s`, "-c", String(conns), ...extra, url]);
    const m = out.match(/Requests\/sec:\s+([\d.]+)/);
    if (!m) throw new Error(`cannot read hey output:\n${out}`);
    return Number(m[1]);
  }
  const client = Deno.createHttpClient(close ? { poolMaxIdlePerHost: 0 } : {});
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
  const kinds: Kind[] = ["native", "fallback", "nodefd", "deno"];
  const modes: Mode[] = ["keep-alive", "new connection"];

  const servers = {} as Record<Kind, Server>;
  for (const kind of kinds) servers[kind] = await startServer(kind);
  const rps = new Map<string, number[]>();
  const perCpu = new Map<string, number[]>();
  const push = (map: Map<string, number[]>, key: string, v: number) =>
    map.set(key, [...(map.get(key) ?? []), v]);
  try {
    // Warm up each (JIT), then alternate so drift hits all alike.
    for (const kind of kinds) await load(tool, servers[kind].port, 1, conns, "keep-alive");
    for (let i = 0; i < runs; i++) {
      for (const mode of modes) {
        for (const kind of kinds) {
          const { port, pid } = servers[kind];
          const cpu0 = cpuSeconds(pid);
          const r = await load(tool, port, seconds, conns, mode);
          const cpu = cpuSeconds(pid) - cpu0;
          push(rps, `${kind}/${mode}`, r);
          push(perCpu, `${kind}/${mode}`, cpu > 0 ? r * seconds / cpu : 0);
          console.error(
            `run ${i + 1}/${runs} ${mode} ${kind}: ${r.toFixed(0)} req/s, ${cpu} CPU-s`,
          );
        }
      }
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
  }
  console.log(
    `tool: ${tool}, ${conns} connections, ${runs} runs of ${seconds} s each per server and mode, ` +
      `${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}, medians\n`,
  );
  console.log("| server | load | requests/s | × Deno.serve | requests/CPU-s | × Deno.serve |");
  console.log("|---|---|--:|--:|--:|--:|");
  for (const mode of modes) {
    const baseRps = median(rps.get(`deno/${mode}`)!);
    const baseCpu = median(perCpu.get(`deno/${mode}`)!);
    for (const kind of kinds) {
      const r = median(rps.get(`${kind}/${mode}`)!);
      const c = median(perCpu.get(`${kind}/${mode}`)!);
      console.log(
        `| ${LABELS[kind]} | ${mode} | ${r.toFixed(0)} | ${(r / baseRps).toFixed(2)} | ` +
          `${c.toFixed(0)} | ${(c / baseCpu).toFixed(2)} |`,
      );
    }
  }
}

if (import.meta.main && !Deno.args[0]?.startsWith("--serve-")) await main();
