/**
 * HTTP in integration tests: one request on a fresh connection, waiting for
 * a URL to answer, reading JSON, a free port. Part of the integration-test
 * harness (re-exported by tests/_harness.ts).
 *
 * @module
 */

import { waitFor, type WaitOptions } from "./_wait.ts";

/** A fully read HTTP response. */
export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  /** `text` parsed as JSON. */
  json<T = unknown>(): T;
}

/** Options of one HTTP request. */
export interface HttpOptions {
  /** Per-request timeout (default 5 s). */
  requestTimeoutMs?: number;
  /** Connect to this unix socket instead of the URL's host. */
  unixSocket?: string;
  method?: string;
}

/**
 * One request on a fresh connection (no pooled connection survives the call),
 * body always read.
 */
export async function httpRequest(url: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const client = opts.unixSocket
    ? Deno.createHttpClient({
      proxy: { transport: "unix", path: opts.unixSocket },
      poolMaxIdlePerHost: 0,
    })
    : Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new Error(`no answer within ${opts.requestTimeoutMs ?? 5000} ms`)),
    opts.requestTimeoutMs ?? 5000,
  );
  try {
    const res = await fetch(url, { client, signal: ac.signal, method: opts.method ?? "GET" });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      text,
      json<T>() {
        return JSON.parse(text) as T;
      },
    };
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

/** Retry `url` until it answers 2xx (body read), or reject on timeout with the last error. */
export function waitForHttp(
  url: string,
  opts: WaitOptions & HttpOptions = {},
): Promise<HttpResult> {
  return waitFor(async () => {
    const r = await httpRequest(url, { requestTimeoutMs: 2000, ...opts });
    if (r.status < 200 || r.status > 299) throw new Error(`HTTP ${r.status}: ${r.text}`);
    return r;
  }, { message: `waiting for ${url} to answer 2xx`, ...opts });
}

/** GET `url` once; throws unless 2xx; returns the parsed JSON body. */
export async function httpGetJson<T = Record<string, unknown>>(
  url: string,
  opts: HttpOptions = {},
): Promise<T> {
  const r = await httpRequest(url, opts);
  if (r.status < 200 || r.status > 299) throw new Error(`GET ${url}: HTTP ${r.status}: ${r.text}`);
  return r.json<T>();
}

/** A free TCP port on 127.0.0.1 at the time of the call (bind port 0, read it, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
