/**
 * The fields of control requests (docs/operations.md, "API (version 1)"):
 * reading a request's JSON body and checking each field, with an error that
 * names the field and what was expected. Used by server.ts.
 *
 * @module
 */

import { MAX_BODY_BYTES, MAX_WORKERS, type RecentQuery } from "./api.ts";
import { RECENT_MAX_READ } from "../output/recent.ts";

/** A request that cannot be served: becomes a `{"error"}` answer. */
export class RequestError extends Error {
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

/** The JSON object in the body; an empty body is `{}`. */
export async function readBody(req: Request): Promise<Record<string, unknown>> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body !== null) {
    for await (const chunk of req.body) {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new RequestError(400, "the request body is not valid UTF-8");
  }
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RequestError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RequestError(400, `the request body must be a JSON object, got ${kindOf(value)}`);
  }
  return value as Record<string, unknown>;
}

function tooLarge(): RequestError {
  return new RequestError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`);
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `${typeof value === "object" ? "an" : "a"} ${typeof value} (${JSON.stringify(value)})`;
}

function workersOf(body: Record<string, unknown>): number {
  const n = body.workers;
  if (n === undefined) {
    throw new RequestError(400, `missing field "workers": expected {"workers": N}`);
  }
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > MAX_WORKERS) {
    throw new RequestError(
      400,
      `"workers": expected an integer from 1 to ${MAX_WORKERS}, got ${shown(n)}`,
    );
  }
  return n;
}

/** A value as the client sent it; JSON turns 1e400 into Infinity, which JSON.stringify shows as null. */
function shown(value: unknown): string {
  if (typeof value === "number" && !Number.isFinite(value)) {
    return `${value} (a number beyond what a double holds)`;
  }
  return JSON.stringify(value);
}

export function quickOf(body: Record<string, unknown>): boolean {
  const quick = body.quick ?? false;
  if (typeof quick !== "boolean") {
    throw new RequestError(400, `"quick": expected true or false, got ${JSON.stringify(quick)}`);
  }
  return quick;
}

/** `{"workers": N}` (absolute) or `{"by": ±N}` (relative to the desired count). */
export function scaleOf(body: Record<string, unknown>): { workers: number; relative?: boolean } {
  if (body.by !== undefined) {
    if (body.workers !== undefined) {
      throw new RequestError(400, `"workers" and "by" exclude each other: give one`);
    }
    const by = body.by;
    if (
      typeof by !== "number" || !Number.isSafeInteger(by) || by === 0 ||
      Math.abs(by) > MAX_WORKERS
    ) {
      throw new RequestError(
        400,
        `"by": expected a non-zero integer from -${MAX_WORKERS} to ${MAX_WORKERS}, got ${
          shown(by)
        }`,
      );
    }
    return { workers: by, relative: true };
  }
  return { workers: workersOf(body) };
}

/** A worker id (`"id"`), 0 to {@link MAX_WORKERS} − 1; `required` false allows it absent. */
export function idOf(value: unknown, required: true): number;
export function idOf(value: unknown, required: false): number | undefined;
export function idOf(value: unknown, required: boolean): number | undefined {
  if (value === undefined && !required) return undefined;
  if (value === undefined) throw new RequestError(400, `missing field "id": expected {"id": N}`);
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value >= MAX_WORKERS
  ) {
    throw new RequestError(
      400,
      `"id": expected a worker id from 0 to ${MAX_WORKERS - 1}, got ${shown(value)}`,
    );
  }
  return value;
}

/** `"signal"`: a name such as "SIGHUP" (the core decides which are allowed). */
export function signalOf(body: Record<string, unknown>): string {
  const signal = body.signal;
  if (typeof signal !== "string" || !/^SIG[A-Z0-9]{1,12}$/.test(signal)) {
    throw new RequestError(
      400,
      `"signal": expected a signal name such as "SIGHUP", got ${shown(signal)}`,
    );
  }
  return signal;
}

/** The query of `GET /v1/logs`: `id`, `after` and `limit`, each optional. */
export function logsQueryOf(params: URLSearchParams): RecentQuery {
  for (const key of params.keys()) {
    if (!["id", "after", "limit"].includes(key)) {
      throw new RequestError(
        400,
        `unknown parameter ${JSON.stringify(key)}; expected "id", "after", "limit"`,
      );
    }
  }
  const integer = (key: string, min: number, max: number): number | undefined => {
    const text = params.get(key);
    if (text === null) return undefined;
    const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new RequestError(
        400,
        `${key}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  };
  return {
    id: integer("id", 0, MAX_WORKERS - 1),
    after: integer("after", 0, Number.MAX_SAFE_INTEGER),
    limit: integer("limit", 1, RECENT_MAX_READ) ?? 50,
  };
}
