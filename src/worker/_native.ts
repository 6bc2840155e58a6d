/**
 * The fast transport of the worker helper: one `Deno.serve` per inherited
 * socket, with the inherited socket swapped in under its native listener
 * (see `_swap.ts`), so requests run at `Deno.serve`'s own speed.
 *
 * Start-up, per inherited fd: start `Deno.serve` on a private address of
 * the same kind (127.0.0.1:0 for TCP v4 and v6, a temporary path for unix
 * sockets); find its listener's fd and epoll registration; swap a private
 * probe socket under it and send one request through it, which must reach
 * this process's server (proof that the runtime accepts from a swapped
 * socket: a probe on the shared socket could land on another worker); then
 * swap the inherited socket in the same way and check the epoll item names
 * it. Any failure throws, and the caller falls back to `node:http`.
 *
 * Drain: a never-connected listening socket (a unix socket whose path is
 * already removed) is swapped in over each listener, so this worker stops
 * accepting at once while the shared queue goes on to the other workers;
 * responses from then on carry `Connection: close`; after the grace period
 * `shutdown()` closes what is still idle and waits for requests in flight.
 * (`shutdown()` alone closes idle keep-alive connections at once, racing a
 * client that is sending its next request on one.)
 *
 * @module
 */

import * as libc from "./_libc.ts";
import {
  findRegistration,
  type Registration,
  socketFds,
  socketInode,
  SwapError,
  swapUnder,
  verifySwap,
} from "./_swap.ts";
import type { Handler, ServeInfo, Transport } from "./_transport.ts";

const PROBE_HEADER = "x-arbiter-probe";
const PROBE_TIMEOUT_MS = 3000;

/** One `Deno.serve` whose listener now accepts from an inherited fd. */
interface Swapped {
  server: Deno.HttpServer;
  fd: number;
  reg: Registration;
}

/** Adds `Connection: close` to a response, copying it when its headers are immutable. */
function withClose(res: Response): Response {
  try {
    res.headers.set("connection", "close");
    return res;
  } catch {
    const copy = new Response(res.body, res);
    copy.headers.set("connection", "close");
    return copy;
  }
}

/** A temporary directory, removed (with what is in it) by `remove()`. */
function tempDir(): { path: string; remove(): void } {
  const path = Deno.makeTempDirSync({ prefix: "arbiter-serve-" });
  return { path, remove: () => Deno.removeSync(path, { recursive: true }) };
}

/** The listening socket `Deno.serve` just created: a new socket fd of the right kind. */
function listenerFd(before: Set<number>, port: number | undefined): number {
  const found = [...socketFds()].filter((fd) =>
    !before.has(fd) && libc.isListeningStreamSocket(fd) &&
    (port === undefined ? libc.socketFamily(fd) === libc.AF_UNIX : libc.tcpPort(fd) === port)
  );
  if (found.length !== 1) {
    throw new SwapError(`found ${found.length} new listening sockets for Deno.serve, expected 1`);
  }
  return found[0];
}

/** Sends one probe request to `addr` and resolves with the answer's body. */
async function probe(addr: Deno.ConnectOptions | Deno.UnixConnectOptions, token: string) {
  const conn = await Deno.connect(addr as Deno.ConnectOptions);
  const timer = setTimeout(() => conn.close(), PROBE_TIMEOUT_MS);
  try {
    await conn.write(new TextEncoder().encode(
      `GET / HTTP/1.1\r\nHost: probe\r\n${PROBE_HEADER}: ${token}\r\nConnection: close\r\n\r\n`,
    ));
    let text = "";
    const buf = new Uint8Array(4096);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text.slice(text.indexOf("\r\n\r\n") + 4);
  } catch (error) {
    throw new SwapError(`no answer to the probe through the swapped listener`, { cause: error });
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

/**
 * Serve `handler` with `Deno.serve` on every inherited fd. Throws
 * {@link SwapError} (or an OS error) when the swap cannot be done and
 * verified; nothing is left running then, and the inherited fds stay open
 * (perhaps non-blocking now) for the fallback.
 */
export async function startNative(fds: number[], handler: Handler): Promise<Transport> {
  if (Deno.build.os !== "linux") throw new SwapError(`needs Linux, this is ${Deno.build.os}`);
  if (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64") {
    throw new SwapError(`needs x86_64 or aarch64, this is ${Deno.build.arch}`);
  }
  try {
    Deno.readDirSync("/proc/self/fd");
  } catch (error) {
    throw new SwapError(`needs -A (${(error as Error).message.split(",")[0]})`);
  }
  // "probe": only probe requests are expected; "serving"; "draining": Connection: close.
  let phase: "probe" | "serving" | "draining" = "probe";
  const token = crypto.randomUUID();
  // A response made after the drain began must say `Connection: close`.
  // A synchronous handler's answer is checked at once; an async one's when
  // it settles (a request in flight at TERM), at the cost of one `then`.
  const closeIfDraining = (res: Response) => phase === "draining" ? withClose(res) : res;
  const serveHandler = (req: Request, info: ServeInfo): Response | Promise<Response> => {
    if (phase === "serving") {
      const res = handler(req, info);
      return res instanceof Promise ? res.then(closeIfDraining) : res;
    }
    if (phase === "draining") {
      const res = handler(req, info);
      return res instanceof Promise ? res.then(withClose) : withClose(res);
    }
    if (req.headers.get(PROBE_HEADER) === token) return new Response(token);
    return new Response("not ready\n", { status: 503 });
  };

  const dir = tempDir();
  const swapped: Swapped[] = [];
  let dummy = -1;
  try {
    for (const [i, fd] of fds.entries()) {
      if (!libc.isListeningStreamSocket(fd)) {
        throw new SwapError(`fd ${fd} is not a listening stream socket`);
      }
      const unix = libc.socketFamily(fd) === libc.AF_UNIX;
      const before = socketFds();
      const server = unix
        ? Deno.serve({ path: `${dir.path}/serve${i}`, onListen() {} }, serveHandler)
        : Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, serveHandler);
      const lfd = listenerFd(before, unix ? undefined : (server.addr as Deno.NetAddr).port);
      const entry: Swapped = { server, fd: lfd, reg: findRegistration(lfd) };
      swapped.push(entry);

      // Prove the mechanism on a socket only this process can be reached on.
      const probePath = `${dir.path}/probe${i}`;
      const probeFd = libc.listenPrivate(unix ? probePath : undefined);
      const probeIno = socketInode(probeFd)!;
      const probeAddr = unix
        ? { transport: "unix" as const, path: probePath }
        : { hostname: "127.0.0.1", port: libc.tcpPort(probeFd) };
      try {
        swapUnder(lfd, probeFd, entry.reg);
      } finally {
        libc.close(probeFd);
      }
      verifySwap(lfd, entry.reg, probeIno);
      const answer = await probe(probeAddr, token);
      if (answer !== token) throw new SwapError(`the probe got ${JSON.stringify(answer)}`);
    }
    // The stand-in for the listeners while draining: listening, but with no
    // address anybody can connect to.
    dummy = libc.listenPrivate(`${dir.path}/dummy`);
    // The shared sockets go in last, all without yielding to the event loop,
    // so no real request can meet the probe phase's 503.
    for (const [i, s] of swapped.entries()) {
      const ino = socketInode(fds[i])!;
      swapUnder(s.fd, fds[i], s.reg);
      verifySwap(s.fd, s.reg, ino);
    }
    phase = "serving";
  } catch (error) {
    phase = "draining"; // what the shared sockets delivered meanwhile is served, then closed
    await Promise.all(swapped.map((s) => s.server.shutdown().catch(() => {})));
    if (dummy >= 0) libc.close(dummy);
    dir.remove();
    throw error;
  }
  dir.remove(); // the listeners' paths: nothing can connect to them now
  for (const fd of fds) libc.close(fd); // the listeners hold the shared sockets now

  const drain = async (graceMs: number): Promise<void> => {
    phase = "draining";
    for (const s of swapped) {
      try {
        swapUnder(s.fd, dummy, s.reg);
      } catch (error) {
        // Still accepting: shutdown() below stops that too, only less gently.
        console.error(`arbiter worker: cannot stop accepting on fd ${s.fd}: ${error}`);
      }
    }
    libc.close(dummy);
    await new Promise((resolve) => setTimeout(resolve, graceMs));
    await Promise.all(swapped.map((s) => s.server.shutdown()));
  };
  return { kind: "native", drain };
}
