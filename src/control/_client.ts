/**
 * The client side of the control API (src/control/api.ts) that every `arbiter
 * ctl` request shares: one HTTP exchange over the unix socket, and the
 * one-line reasons a person reads when it fails.
 *
 * @module
 */

import { ExitCode } from "../errors.ts";
import { API_PREFIX } from "./api.ts";

/** How long `ctl` waits for the master's answer. */
export const CTL_TIMEOUT_MS = 15_000;

/** A failure with its exit code and one-line message. */
export class CtlFailure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** One HTTP request over the unix socket; returns the body of a 2xx answer. */
export async function exchange(
  path: string,
  method: "GET" | "POST",
  route: string,
  body?: unknown,
  timeoutMs: number = CTL_TIMEOUT_MS,
): Promise<string> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
  try {
    let res: Response;
    try {
      res = await fetch(`http://arbiter${API_PREFIX}/${route}`, {
        client,
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new CtlFailure(ExitCode.Runtime, connectError(path, error, timeoutMs));
    }
    const text = await res.text();
    if (res.ok) return text;
    let reason = `HTTP ${res.status}`;
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed?.error === "string") reason = parsed.error;
    } catch {
      if (text.trim() !== "") reason += `: ${text.trim().slice(0, 200)}`;
    }
    throw new CtlFailure(ExitCode.Runtime, `the master refused: ${reason}`);
  } finally {
    client.close();
  }
}

export function connectError(path: string, error: unknown, timeoutMs = CTL_TIMEOUT_MS): string {
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return `no answer from the master at ${path} within ${timeoutMs / 1000} s`;
  }
  let text = "";
  for (let e: unknown = error; e instanceof Error; e = e.cause) text += ` ${e.message}`;
  if (/connection refused/i.test(text)) {
    return `the master is not running: connection refused at ${path} (a stale socket?)`;
  }
  if (/permission denied/i.test(text)) {
    return `cannot connect to ${path}: permission denied (run as the master's user)`;
  }
  if (/connection reset|connection closed|broken pipe|incomplete message/i.test(text)) {
    // What the bounded server does past its connection cap (or to a client too slow).
    return `the master closed the connection at ${path} without an answer: its control ` +
      `socket may be at its connection limit (see the master's log); try again`;
  }
  if (/no such file/i.test(text)) {
    return `no control socket at ${path}: is the master running, with control_socket set?`;
  }
  const detail = text.trim().replace(/^fetch failed\s*/, "") || "unknown error";
  return `cannot talk to the master at ${path}: ${detail}`;
}

export function parseAnswer(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CtlFailure(
      ExitCode.Runtime,
      `the master's answer is not JSON: ${text.slice(0, 200)}`,
    );
  }
}
