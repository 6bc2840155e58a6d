/**
 * The fallback transport of the worker helper: `node:http` servers on the
 * inherited fds (`listen({ fd })`), converting each request and response
 * between `node:http` and the web `Request` / `Response` (headers, status,
 * streaming bodies both ways). About a third of `Deno.serve`'s speed; used
 * when the native path cannot be set up (see `_native.ts`).
 *
 * Drain rules (the worker protocol's; each avoids a reset seen under HUP):
 * stop accepting but leave open connections alone (`server.close()` would
 * close idle keep-alive ones at once, racing a client that is sending its
 * next request); answer every request after the drain began with
 * `Connection: close` and close after it; close a connection only once it
 * has been idle (no request in flight) for the grace period — including one
 * that has not sent its first request yet, whose client is about to.
 *
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import type { Handler, ServeInfo, Transport } from "./_transport.ts";

/** A web `Request` for a `node:http` request. */
function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const raw = req.rawHeaders;
  const pairs: [string, string][] = [];
  let host = "localhost";
  for (let i = 0; i + 1 < raw.length; i += 2) {
    pairs.push([raw[i], raw[i + 1]]);
    if (raw[i].length === 4 && raw[i].toLowerCase() === "host") host = raw[i + 1];
  }
  const path = req.url ?? "/";
  const url = path.startsWith("/") ? `http://${host}${path}` : new URL(path, `http://${host}`);
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  const init = {
    method,
    headers: pairs as HeadersInit,
    signal,
    body: hasBody ? Readable.toWeb(req) as ReadableStream<Uint8Array> : null,
    duplex: "half", // required for a streaming request body
  };
  try {
    return new Request(url, init);
  } catch {
    // A header the fetch API refuses (or a bad Host): leave such headers out.
    const headers = new Headers();
    for (const [name, value] of pairs) {
      try {
        headers.append(name, value);
      } catch {
        // Dropped.
      }
    }
    return new Request(`http://localhost${path.startsWith("/") ? path : "/"}`, {
      ...init,
      headers,
    });
  }
}

/** The `remoteAddr` `Deno.serve` would report for this connection. */
function remoteAddr(socket: Socket): Deno.Addr {
  if (socket.remoteAddress === undefined) return { transport: "unix", path: "" };
  return { transport: "tcp", hostname: socket.remoteAddress, port: socket.remotePort ?? 0 };
}

const NOT_YET_VALUE = Symbol("not yet");
/** Settled already: loses a race only to a promise that is settled too. */
const NOT_YET = Promise.resolve(NOT_YET_VALUE);

/** Writes a web `Response` to a `node:http` response, streaming its body. */
async function writeResponse(
  res: ServerResponse,
  response: Response,
  closing: boolean,
): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  if (closing) res.setHeader("connection", "close");
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    // A body that is complete at once (a string, bytes) goes out in one
    // write with a Content-Length; anything else is streamed as it comes.
    const first = await reader.read();
    if (first.done) return void res.end();
    const pending = reader.read();
    const second = await Promise.race([pending, NOT_YET]);
    if (second !== NOT_YET_VALUE && second.done) return void res.end(first.value);
    await write(res, first.value);
    let next = second === NOT_YET_VALUE ? await pending : second;
    while (!next.done) {
      await write(res, next.value);
      next = await reader.read();
    }
    res.end();
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  }
}

/** Write one chunk, waiting for the socket to drain when its buffer is full. */
async function write(res: ServerResponse, chunk: Uint8Array): Promise<void> {
  if (res.destroyed) throw new Error("client went away");
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const go = () => {
      res.off("drain", go);
      res.off("close", go);
      resolve();
    };
    res.on("drain", go);
    res.on("close", go);
  });
}

/** Per connection: requests in flight and since when it has had none. */
interface ConnState {
  busy: number;
  idleSince: number;
  /** `socket.bytesRead` at the last drain sweep: a request still arriving is not silence. */
  bytesRead?: number;
}

function listenOn(server: Server, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Serve `handler` with `node:http` on every fd; resolves once all are listening. */
export async function startNode(fds: number[], handler: Handler): Promise<Transport> {
  let draining = false;
  const conns = new Map<Socket, ConnState>();

  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const state = conns.get(socket);
    if (state) state.busy++;
    const aborter = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) aborter.abort(new Error("client went away"));
      if (state) {
        state.busy--;
        state.idleSince = performance.now();
      }
    });
    let response: Response;
    try {
      const info: ServeInfo = { remoteAddr: remoteAddr(socket) };
      response = await handler(toRequest(req, aborter.signal), info);
    } catch (error) {
      console.error(error);
      response = new Response("Internal Server Error\n", {
        status: 500,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    try {
      await writeResponse(res, response, draining);
    } catch (error) {
      if (!res.headersSent && !res.destroyed) {
        res.statusCode = 500;
        res.end();
      } else {
        if (!res.destroyed) console.error(error);
        res.destroy();
      }
    }
  };

  const servers = fds.map(() => {
    const server = createServer(onRequest);
    server.on("connection", (socket: Socket) => {
      conns.set(socket, { busy: 0, idleSince: performance.now() });
      socket.once("close", () => conns.delete(socket));
    });
    return server;
  });
  try {
    await Promise.all(servers.map((server, i) => listenOn(server, fds[i])));
  } catch (error) {
    for (const server of servers) if (server.listening) server.close();
    throw error;
  }

  const drain = async (graceMs: number): Promise<void> => {
    draining = true;
    // The grace runs from TERM at the earliest: a connection idle for a while
    // may carry a request right now.
    for (const state of conns.values()) state.idleSince = performance.now();
    const closed = servers.map((server) =>
      new Promise<void>((resolve) => {
        // Stop accepting, but keep idle connections: see the module header.
        server.closeIdleConnections = () => {};
        server.close(() => resolve());
      })
    );
    const sweep = () => {
      const now = performance.now();
      for (const [socket, state] of conns) {
        if (state.busy > 0 || socket.writableEnded) continue;
        if (state.bytesRead !== undefined && state.bytesRead !== socket.bytesRead) {
          state.idleSince = now;
        }
        state.bytesRead = socket.bytesRead;
        if (now - state.idleSince < graceMs) continue;
        socket.end(); // FIN once the last response is flushed
        const timer = setTimeout(() => socket.destroy(), 2000);
        Deno.unrefTimer(timer);
        socket.once("close", () => clearTimeout(timer));
      }
    };
    const sweeper = setInterval(sweep, Math.max(10, Math.min(100, graceMs / 4)));
    try {
      sweep();
      await Promise.all(closed);
    } finally {
      clearInterval(sweeper);
    }
  };
  return { kind: "node", drain };
}
