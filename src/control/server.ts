/**
 * The control socket (docs/contract.md, "Operations", "Security"): a unix
 * socket of mode 0600 serving the JSON API of {@link ./api.ts} to `arbiter
 * ctl`.
 *
 * Invariants:
 * - The socket file is created with mode 0600 from the start: it is bound
 *   while the process umask is 0o177 (set and restored around the
 *   synchronous bind, no `await` in between), never chmod'ed afterwards, so
 *   there is no moment at which another user could connect.
 * - A symlink or any other non-socket at the path is refused (exit 1), and
 *   bind(2) itself never follows a symlink planted after the check; a stale
 *   socket (nobody answers) is replaced; a live one (another master) is
 *   refused.
 * - A request can never crash the master: every bad request gets a 4xx with
 *   `{"error": "..."}`, a failing handler a 500, and the server keeps serving.
 *   Connections, sizes and times are bounded by {@link serveBounded}.
 * - `close()` stops serving and removes the socket file, but only if the
 *   file at the path is still the one this server created.
 *
 * @module
 */

import { serveBounded, type ServerLimits } from "../http/bounded_server.ts";
import { listenErrorReason } from "../sockets/errors.ts";
import { ArbiterError, ExitCode } from "../errors.ts";
import * as libc from "../sys/libc.ts";
import { API_PREFIX, type ControlAction, type ControlHandler, MAX_BODY_BYTES } from "./api.ts";
import {
  idOf,
  logsQueryOf,
  quickOf,
  readBody,
  RequestError,
  scaleOf,
  signalOf,
} from "./_fields.ts";

/**
 * The bounds of the control socket (docs/security.md, "The master's own
 * servers"): the shared defaults, with room for the largest control request
 * body.
 */
export const CONTROL_LIMITS: Partial<ServerLimits> = { maxBodyBytes: MAX_BODY_BYTES };

/** The umask that makes a new socket file mode 0600 (0o777 & ~0o177). */
const SOCKET_UMASK = 0o177;

/** A running control server. */
export interface ControlServer {
  /** The absolute path of the socket. */
  readonly path: string;
  /** Stop serving (in-flight requests finish) and remove the socket file. */
  close(): Promise<void>;
}

/**
 * Create the control socket at `path` and serve the control API on it.
 *
 * @param path Absolute path of the socket (`control_socket` from the config).
 * @param handler What answers the requests: the master.
 * @returns The server; `close()` also removes the socket file.
 * @throws {ArbiterError} (exit 1) when the path holds a symlink, a non-socket
 * or a socket another process serves, or when the socket cannot be created.
 *
 * @example Usage
 * ```ts
 * import type { ControlHandler } from "./api.ts";
 * import { startControlServer } from "./server.ts";
 * declare const master: { statusReport: ControlHandler["status"]; control: ControlHandler["act"] };
 * const server = await startControlServer("/run/app/ctl.sock", {
 *   status: () => master.statusReport(),
 *   act: (action) => master.control(action),
 * });
 * // ... on exit:
 * await server.close();
 * ```
 */
export async function startControlServer(
  path: string,
  handler: ControlHandler,
): Promise<ControlServer> {
  await clearSocketPath(path);
  let listener: Deno.Listener;
  const previousMask = libc.umask(SOCKET_UMASK);
  try {
    listener = Deno.listen({ path, transport: "unix" });
  } catch (error) {
    throw socketError(path, error);
  } finally {
    libc.umask(previousMask);
  }
  let inode: number | null;
  try {
    const info = Deno.lstatSync(path);
    inode = info.ino;
    const mode = (info.mode ?? 0) & 0o777;
    if (!info.isSocket || mode !== 0o600) {
      throw new Error(`expected a socket of mode 0600, found mode 0${mode.toString(8)}`);
    }
  } catch (error) {
    listener.close();
    throw socketError(path, error);
  }
  const server = serveBounded({
    name: "control socket",
    listener,
    handler: (req) => handleRequest(req, handler),
    errorResponse: (status, message) => json(status, { error: message }),
    limits: CONTROL_LIMITS,
  });
  let closed: Promise<void> | undefined;
  return {
    path,
    close: () =>
      closed ??= (async () => {
        await server.close();
        removeIfOurs(path, inode);
      })(),
  };
}

function socketError(path: string, error: unknown): ArbiterError {
  const reason = error instanceof Deno.errors.NotFound
    ? "its directory does not exist"
    : error instanceof Deno.errors.AddrInUse
    ? "the path is in use"
    : listenErrorReason(error);
  return new ArbiterError(
    ExitCode.Runtime,
    `control_socket: cannot create ${path}: ${reason}`,
    { cause: error },
  );
}

/** Refuses what must not be replaced at the path; removes a stale socket. */
async function clearSocketPath(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw socketError(path, error);
  }
  const refuse = (why: string) =>
    new ArbiterError(ExitCode.Runtime, `control_socket: ${path} ${why}; refusing to replace it`);
  if (info.isSymlink) throw refuse("is a symbolic link");
  if (!info.isSocket) {
    throw refuse(info.isDirectory ? "is a directory" : "exists and is not a socket");
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch {
    // Nobody answers: a socket left behind by a master that is gone.
    try {
      Deno.removeSync(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw socketError(path, error);
    }
    return;
  }
  throw new ArbiterError(
    ExitCode.Runtime,
    `control_socket: ${path} is in use: another process (another arbiter master?) serves it`,
  );
}

function removeIfOurs(path: string, inode: number | null): void {
  try {
    const info = Deno.lstatSync(path);
    if (info.isSocket && info.ino === inode) Deno.removeSync(path);
  } catch {
    // Already gone (Deno removes the socket file when its listener closes).
  }
}

// ---------------------------------------------------------------------------
// Requests

type Route = {
  method: "GET" | "POST";
  run: (body: Record<string, unknown>, handler: ControlHandler, url: URL) => Promise<Response>;
};

const ROUTES: Record<string, Route> = {
  [`${API_PREFIX}/status`]: {
    method: "GET",
    run: (_body, handler) => Promise.resolve(json(200, handler.status())),
  },
  [`${API_PREFIX}/logs`]: {
    method: "GET",
    run: (_body, handler, url) => {
      const query = logsQueryOf(url.searchParams);
      if (!handler.logs) throw new RequestError(404, "this master keeps no worker output");
      const report = handler.logs(query);
      if (report.refused !== undefined) throw new RequestError(404, report.refused);
      return Promise.resolve(json(200, report));
    },
  },
  [`${API_PREFIX}/reload`]: {
    method: "POST",
    run: (body, handler) => act(handler, { type: "reload" }, body, []),
  },
  [`${API_PREFIX}/scale`]: {
    method: "POST",
    run: (body, handler) =>
      act(handler, { type: "scale", ...scaleOf(body) }, body, ["workers", "by"]),
  },
  [`${API_PREFIX}/restart`]: {
    method: "POST",
    run: (body, handler) =>
      act(handler, { type: "restart", id: idOf(body.id, true) }, body, ["id"]),
  },
  [`${API_PREFIX}/signal`]: {
    method: "POST",
    run: (body, handler) => {
      const id = idOf(body.id, false);
      const action = {
        type: "signal" as const,
        signal: signalOf(body),
        ...(id === undefined ? {} : { id }),
      };
      return act(handler, action, body, ["signal", "id"]);
    },
  },
  [`${API_PREFIX}/stop`]: {
    method: "POST",
    run: (body, handler) => act(handler, { type: "stop", quick: quickOf(body) }, body, ["quick"]),
  },
  [`${API_PREFIX}/upgrade`]: {
    method: "POST",
    run: (body, handler) => act(handler, { type: "upgrade" }, body, []),
  },
};

const ROUTE_LIST = Object.entries(ROUTES).map(([p, r]) => `${r.method} ${p}`).join(", ");

/**
 * Answer one control request. Never throws: every failure becomes a JSON
 * error answer. Exported for tests.
 */
export async function handleRequest(req: Request, handler: ControlHandler): Promise<Response> {
  try {
    const url = new URL(req.url);
    const { pathname } = url;
    const route = Object.hasOwn(ROUTES, pathname) ? ROUTES[pathname] : undefined;
    if (route === undefined) {
      throw new RequestError(
        404,
        `no such request: ${req.method} ${pathname}; this master serves ${ROUTE_LIST}`,
      );
    }
    if (req.method !== route.method) {
      throw new RequestError(405, `${pathname} expects ${route.method}, not ${req.method}`, {
        Allow: route.method,
      });
    }
    const body = route.method === "POST" ? await readBody(req) : {};
    return await route.run(body, handler, url);
  } catch (error) {
    if (error instanceof RequestError) {
      return json(error.status, { error: error.message }, error.headers);
    }
    return internalError(error);
  }
}

function internalError(error: unknown): Response {
  const message = error instanceof Error ? error.message : String(error);
  return json(500, { error: `internal error: ${message}` });
}

function json(status: number, value: unknown, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(value) + "\n", {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

async function act(
  handler: ControlHandler,
  action: ControlAction,
  body: Record<string, unknown>,
  known: string[],
): Promise<Response> {
  const unknown = Object.keys(body).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    const expected = known.length === 0 ? "no fields" : known.map((k) => `"${k}"`).join(", ");
    throw new RequestError(400, `unknown field ${JSON.stringify(unknown)}; expected ${expected}`);
  }
  const result = await handler.act(action);
  if (result.ok) return json(200, { ok: true, message: result.message, rollout: result.rollout });
  return json(409, { error: result.error });
}
