// Whether a process holds the V8 inspector's port (Deno and Node open it on USR1).

/** The inspector's default port on 127.0.0.1. */
export const INSPECTOR_PORT = 9229;

/**
 * Whether process `pid` itself holds a listening TCP socket on `port`: the
 * namespace's tables filtered by the inodes of the process's own fds, since
 * another program on the machine may hold the port.
 */
export function listensOn(pid: number, port: number): boolean {
  const inodes = new Set<string>();
  for (const { name } of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${name}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    } catch { /* closed meanwhile */ }
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return ["tcp", "tcp6"].some((table) =>
    Deno.readTextFileSync(`/proc/${pid}/net/${table}`).split("\n").slice(1).some((line) => {
      const f = line.trim().split(/\s+/);
      const LISTEN = "0A";
      return f.length > 9 && f[1].endsWith(`:${hexPort}`) && f[3] === LISTEN && inodes.has(f[9]);
    })
  );
}
