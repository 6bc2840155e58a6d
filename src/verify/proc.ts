/**
 * What `arbiter verify` reads from `/proc` to see the worker from outside:
 * the process tree under the private master, a worker's signal dispositions,
 * which sockets a process holds, and whether a connection has been accepted
 * yet. Read-only; every function tolerates a process that vanished midway.
 *
 * Invariants:
 * - A process is identified by pid *and* start time, so a reused pid is never
 *   mistaken for the one that was seen before.
 * - `/proc/net/tcp` lists every socket of the machine and can take seconds
 *   to read on a busy one: it is read only where nothing else tells the
 *   answer (which addresses a worker listens on), never in a polling loop.
 *
 * @module
 */

/** Fields of `/proc/<pid>/stat` (the ones verify and the tests need). */
export interface ProcStat {
  pid: number;
  comm: string;
  /** One letter: R, S, D, Z, T, ... */
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** Clock ticks since boot; with the pid, identifies a process. */
  starttime: number;
}

/** Parses the text of `/proc/<pid>/stat` (comm may hold spaces and parentheses). */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).trim().split(/\s+/);
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: f[0],
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    sid: Number(f[3]),
    starttime: Number(f[19]),
  };
}

/** `/proc/<pid>/stat`, or undefined when the process is gone. */
export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return undefined;
  }
}

/** True if the process runs (exists and is not a zombie) and is still the one seen at `starttime`. */
export function stillRunning(pid: number, starttime: number): boolean {
  const st = readStat(pid);
  return st !== undefined && st.state !== "Z" && st.starttime === starttime;
}

/** The argv of a process, joined by spaces; "" when gone. */
export function commandLine(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean).join(" ");
  } catch {
    return "";
  }
}

/** Every process on the machine, by one scan of `/proc`. */
export function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const st = readStat(Number(entry.name));
    if (st) out.push(st);
  }
  return out;
}

/** Every descendant of `pid` (children, grandchildren, ...), from one scan of `/proc`. */
export function descendantsOf(pid: number): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const st of allStats()) {
    const list = byParent.get(st.ppid);
    if (list) list.push(st);
    else byParent.set(st.ppid, [st]);
  }
  const out: ProcStat[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** What a process does when `signal` (a number) arrives, from `/proc/<pid>/status`. */
export type Disposition = "caught" | "ignored" | "default";

/** The disposition of `signal` in a `/proc/<pid>/status` text. */
export function parseDisposition(statusText: string, signal: number): Disposition | undefined {
  const mask = (name: string) => {
    const m = statusText.match(new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m"));
    return m ? BigInt(`0x${m[1]}`) : undefined;
  };
  const caught = mask("SigCgt");
  const ignored = mask("SigIgn");
  if (caught === undefined || ignored === undefined) return undefined;
  const bit = 1n << BigInt(signal - 1);
  if (caught & bit) return "caught";
  if (ignored & bit) return "ignored";
  return "default";
}

/** The disposition of `signal` in process `pid`, or undefined when it is gone. */
export function dispositionOf(pid: number, signal: number): Disposition | undefined {
  try {
    return parseDisposition(Deno.readTextFileSync(`/proc/${pid}/status`), signal);
  } catch {
    return undefined;
  }
}

/** The socket inodes a process holds, by fd (empty when it is gone or unreadable). */
export function socketFds(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        const m = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`).match(/^socket:\[(\d+)\]$/);
        if (m) out.set(Number(entry.name), Number(m[1]));
      } catch { /* closed meanwhile */ }
    }
  } catch { /* gone */ }
  return out;
}

/** One row of `/proc/net/tcp` or `/proc/net/tcp6`. */
export interface TcpRow {
  local: string;
  localPort: number;
  remotePort: number;
  /** "0A" LISTEN, "01" ESTABLISHED, ... */
  state: string;
  inode: number;
}

/** Decodes a hex address of `/proc/net/tcp*` (little-endian 32-bit words). */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // Shorten the longest run of zero groups to "::".
  let [start, len] = [-1, 0];
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > len) [start, len] = [i, j - i];
  }
  if (len < 2) return `[${groups.join(":")}]`;
  return `[${groups.slice(0, start).join(":")}::${groups.slice(start + len).join(":")}]`;
}

/** Parses the text of `/proc/net/tcp` or `/proc/net/tcp6`. */
export function parseTcpTable(text: string): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [localHex, localPort] = f[1].split(":");
    rows.push({
      local: `${decodeAddress(localHex)}:${parseInt(localPort, 16)}`,
      localPort: parseInt(localPort, 16),
      remotePort: parseInt(f[2].split(":")[1], 16),
      state: f[3],
      inode: Number(f[9]),
    });
  }
  return rows;
}

/** Every TCP socket on the machine (IPv4 and IPv6). */
export function tcpRows(): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    try {
      rows.push(...parseTcpTable(Deno.readTextFileSync(file)));
    } catch { /* no IPv6 */ }
  }
  return rows;
}

/** Listening unix sockets: inode → path (`/proc/net/unix`). */
export function unixListeners(): Map<number, string> {
  const out = new Map<number, string>();
  try {
    for (const line of Deno.readTextFileSync("/proc/net/unix").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // Flags 00010000 is __SO_ACCEPTCON: a listening socket.
      if (f.length >= 8 && f[3] === "00010000") out.set(Number(f[6]), f[7]);
    }
  } catch { /* unreadable */ }
  return out;
}

/** Unix socket inodes (`/proc/net/unix`, which stays small, unlike `/proc/net/tcp`). */
export function unixInodes(): Set<number> {
  const out = new Set<number>();
  try {
    for (const line of Deno.readTextFileSync("/proc/net/unix").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 7) out.add(Number(f[6]));
    }
  } catch { /* unreadable */ }
  return out;
}

/** Every socket inode the processes `pids` hold. */
export function socketsOf(pids: number[]): Set<number> {
  return new Set(pids.flatMap((pid) => [...socketFds(pid).values()]));
}

/**
 * A socket that one of `pids` holds now and did not hold in `before`, other
 * than a unix socket: when verify alone talks to the workers, that is the
 * connection it just opened, accepted. (Finding the connection by its ports
 * in `/proc/net/tcp` would be exact, but that file lists every socket of the
 * machine and takes seconds to read on a busy one.)
 */
export function newConnection(
  pids: number[],
  before: Set<number>,
): { pid: number; inode: number } | undefined {
  for (const pid of pids) {
    for (const inode of socketFds(pid).values()) {
      if (before.has(inode)) continue;
      // A worker's short-lived notify socket is a unix socket; it may close
      // between the two reads, so a candidate must still be held afterwards.
      if (unixInodes().has(inode)) continue;
      if ([...socketFds(pid).values()].includes(inode)) return { pid, inode };
    }
  }
  return undefined;
}
