/**
 * Helpers for the notify hub's tests (hub_test.ts, hub_stream_test.ts): a
 * recorder of what the hub reports, a hub per test, and real senders
 * (Python's SOCK_DGRAM, Deno stream clients). Every wait is on an event,
 * never a sleep.
 *
 * @module
 */

import { tmpdir } from "node:os";
import { strictEqual } from "node:assert/strict";
import { NotifyHub } from "./hub.ts";

export const SYSTEMD_NOTIFY = "/usr/bin/systemd-notify";
export const SYSTEM_PYTHON = "/usr/bin/python3";
export const WAIT_MS = 10_000;

export type Received =
  | { kind: "message"; serial: number; fields: Record<string, string> }
  | { kind: "garbage"; serial: number; why: string };

/** Records what the hub reports and lets a test wait for the next matching report. */
export class Recorder {
  readonly seen: Received[] = [];
  #cursor = 0;
  #wake?: () => void;

  onMessage = (serial: number, fields: Record<string, string>): void => {
    this.seen.push({ kind: "message", serial, fields });
    this.#wake?.();
  };
  onGarbage = (serial: number, why: string): void => {
    this.seen.push({ kind: "garbage", serial, why });
    this.#wake?.();
  };

  /** The next report after the last one returned; fails after WAIT_MS. */
  async next(): Promise<Received> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (this.#cursor >= this.seen.length) {
        await new Promise<void>((resolve, reject) => {
          this.#wake = resolve;
          timer = setTimeout(
            () => reject(new Error(`no notify report within ${WAIT_MS} ms`)),
            WAIT_MS,
          );
        });
        clearTimeout(timer);
      }
    } finally {
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.seen[this.#cursor++];
  }

  async nextMessage(): Promise<{ serial: number; fields: Record<string, string> }> {
    const r = await this.next();
    if (r.kind !== "message") throw new Error(`expected a message, got ${JSON.stringify(r)}`);
    return { serial: r.serial, fields: r.fields };
  }

  async nextGarbage(): Promise<{ serial: number; why: string }> {
    const r = await this.next();
    if (r.kind !== "garbage") throw new Error(`expected garbage, got ${JSON.stringify(r)}`);
    return { serial: r.serial, why: r.why };
  }

  /** Nothing unread. */
  get drained(): boolean {
    return this.#cursor === this.seen.length;
  }
}

/** Opens a channel whose worker is this test process (so it and its children may send). */
export async function openHere(
  hub: NotifyHub,
  serial: number,
  owner?: { uid: number; gid?: number },
) {
  const ep = await hub.open(serial, owner);
  hub.setWorkerPid(serial, Deno.pid);
  return ep;
}

export async function withHub(fn: (hub: NotifyHub, rec: Recorder) => Promise<void>): Promise<void> {
  const rec = new Recorder();
  const hub = await NotifyHub.create(tmpdir(), rec.onMessage, rec.onGarbage);
  try {
    await fn(hub, rec);
  } finally {
    await hub.closeAll();
  }
}

export const hex = (b: Uint8Array) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

// Sends, then waits on a barrier as sd_notify_barrier() does: the hub checks a
// sender by /proc while it handles the datagram, so a sender that exits at once
// might be gone by then (see sender.ts); the barrier keeps it alive until then.
const PY_SEND = "import array, os, select, socket, sys\n" +
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n" +
  "s.sendto(bytes.fromhex(sys.argv[2]), sys.argv[1])\n" +
  "r, w = os.pipe()\n" +
  "s.sendmsg([b'BARRIER=1'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [w]).tobytes())], 0, sys.argv[1])\n" +
  "os.close(w)\n" +
  "select.select([r], [], [], 10)\n";

/** Sends one datagram from a Python process; resolves to its exit code and stderr. */
export async function pySend(
  path: string,
  payload: string | Uint8Array,
  opts: { asNobody?: boolean } = {},
): Promise<{ code: number; stderr: string }> {
  const data = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const argv = ["python3", "-c", PY_SEND, path, hex(data)];
  const cmd = opts.asNobody
    ? [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      SYSTEM_PYTHON,
      ...argv.slice(1),
    ]
    : argv;
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "null",
    stderr: "piped",
  })
    .output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

export async function mustSend(path: string, payload: string | Uint8Array): Promise<void> {
  const r = await pySend(path, payload);
  strictEqual(r.code, 0, r.stderr);
}

export async function run(cmd: string[], env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  strictEqual(out.code, 0, `${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Connects to a stream channel from Deno. */
export function connectStream(path: string): Promise<Deno.UnixConn> {
  return Deno.connect({ transport: "unix", path });
}

export async function write(conn: Deno.Conn, text: string | Uint8Array): Promise<void> {
  const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Resolves once the peer has closed `conn` (EOF or reset). */
export async function waitClosedByPeer(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16);
  try {
    while ((await conn.read(buf)) !== null) { /* nothing is ever sent */ }
  } catch {
    // Reset: closed too.
  }
}

/** Retries `probe` (each try waits on an event) up to a few times. */
export async function waitFor<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 50; i++) {
    const v = await probe();
    if (v !== undefined) return v;
  }
  throw new Error("waitFor: gave up");
}

/** Runs `fn` with `vars` set (undefined: unset) in the environment, then restores it. */
export async function withEnv(
  vars: Record<string, string | undefined>,
  fn: () => Promise<void>,
): Promise<void> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) Deno.env.delete(k);
      else Deno.env.set(k, x);
    }
  };
  apply(vars);
  try {
    await fn();
  } finally {
    apply(saved);
  }
}
