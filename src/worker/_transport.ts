/**
 * What the worker helper's two transports have in common: the handler they
 * call and the one operation the lifecycle in `mod.ts` needs from them.
 *
 * @module
 */

/** What a handler learns about the connection, as in `Deno.serve`. */
export interface ServeInfo {
  /** The client's address (`tcp`), or a `unix` address for unix sockets. */
  remoteAddr: Deno.Addr;
}

/** A fetch-style request handler. */
export type Handler = (req: Request, info: ServeInfo) => Response | Promise<Response>;

/** Which path serves: `Deno.serve`'s own listener, or `node:http`. */
export type TransportKind = "native" | "node";

/** A transport that is listening on every inherited fd. */
export interface Transport {
  readonly kind: TransportKind;
  /**
   * Stop accepting at once (the shared sockets are left to the other
   * workers), answer every further request with `Connection: close`, close
   * connections once idle for `graceMs`, and resolve when none is left.
   */
  drain(graceMs: number): Promise<void>;
}
