/**
 * Parsing of listen addresses (`bind` and `metrics_bind` values) into
 * {@link BindSpec}s. Pure: resolves paths but never touches the file system
 * or the network.
 *
 * The `text` of every result is canonical (`[::1]:8000`, `unix:/abs/path`,
 * `fd://3`), so two specs name the same listener exactly when their `text`
 * is equal, and printing `text` back into a config file gives the same spec
 * whatever directory that file is read from.
 *
 * @module
 */

import { isIPv4, isIPv6 } from "./_ip.ts";
import { resolve } from "node:path";
import { ConfigError } from "../errors.ts";
import type { BindSpec } from "./types.ts";
import { showValue as show } from "./_format.ts";
import { MAX_FD } from "../core/limits.ts";

/** What `parseBind` accepts, for error messages. */
export const BIND_FORMS = "HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N";

/**
 * The longest unix socket path the kernel takes (`sun_path` is 108 bytes
 * with its terminating NUL). A longer path only fails at bind time, so it is
 * rejected up front.
 */
export const UNIX_PATH_MAX = 107;

/** A TCP listen address: the `tcp` member of {@link BindSpec}. */
export type TcpBindSpec = Extract<BindSpec, { kind: "tcp" }>;

/**
 * Parse one listen address.
 *
 * Accepted forms: `HOST:PORT` (a hostname or an IPv4 address), `[V6]:PORT`
 * (the hostname is stored without brackets), `unix:PATH` (also Gunicorn's
 * `unix://PATH`; a relative path is resolved against `cwd`) and `fd://N`
 * (an inherited listening socket, N ≥ 3). Ports are integers 0…65535.
 *
 * @param text The address as written.
 * @param cwd The directory a relative unix socket path is resolved against.
 * @param label The name used in error messages (the config key or option).
 * @returns The parsed address, with a canonical `text`.
 * @throws {ConfigError} When `text` is none of the accepted forms; the
 * message names the value and the accepted forms.
 *
 * @example Usage
 * ```ts
 * import { parseBind } from "./bind.ts";
 * parseBind("[::1]:8000", "/srv"); // { kind: "tcp", hostname: "::1", port: 8000, ... }
 * parseBind("unix:app.sock", "/srv"); // { kind: "unix", path: "/srv/app.sock", ... }
 * ```
 */
export function parseBind(text: string, cwd: string, label = "bind"): BindSpec {
  if (text.startsWith("unix:")) {
    const raw = text.startsWith("unix://") ? text.slice("unix://".length) : text.slice(5);
    const path = checkSocketPath(raw, cwd, label, text);
    return { kind: "unix", path, text: `unix:${path}` };
  }
  if (text.startsWith("fd://")) {
    const digits = text.slice("fd://".length);
    const fd = /^\d+$/.test(digits) ? Number(digits) : NaN;
    if (!Number.isSafeInteger(fd) || fd < 3 || fd > MAX_FD) {
      throw new ConfigError(
        `${label}: ${show(text)} is not an inherited socket; expected fd://N with N an ` +
          `integer from 3 to ${MAX_FD} (0, 1 and 2 are stdin, stdout and stderr)`,
      );
    }
    return { kind: "fd", fd, text: `fd://${fd}` };
  }
  const tcp = tryParseHostPort(text);
  if (typeof tcp === "string") {
    throw new ConfigError(
      `${label}: ${show(text)} is not a listen address${tcp}; expected ${BIND_FORMS}`,
    );
  }
  return tcp;
}

/**
 * Parse a TCP address `HOST:PORT` or `[V6]:PORT` (no unix or fd forms), as
 * `metrics_bind` takes.
 *
 * @param text The address as written.
 * @param label The name used in error messages.
 * @returns The parsed address, with a canonical `text`.
 * @throws {ConfigError} When `text` is not a TCP address.
 *
 * @example Usage
 * ```ts
 * import { parseHostPort } from "./bind.ts";
 * parseHostPort("0.0.0.0:9100", "metrics_bind").port; // 9100
 * ```
 */
export function parseHostPort(text: string, label: string): TcpBindSpec {
  const tcp = tryParseHostPort(text);
  if (typeof tcp === "string") {
    throw new ConfigError(
      `${label}: ${show(text)} is not a TCP address${tcp}; expected HOST:PORT or [IPV6]:PORT`,
    );
  }
  return tcp;
}

/**
 * Resolve a unix socket path against `cwd` and check that the kernel can
 * bind it: non-empty, no NUL byte, at most {@link UNIX_PATH_MAX} bytes.
 *
 * @param path The path as written.
 * @param cwd The directory a relative path is resolved against.
 * @param label The name used in error messages.
 * @param shown The value to quote in error messages (defaults to `path`).
 * @returns The absolute path.
 * @throws {ConfigError} When the path is empty, has a NUL byte or is too long.
 */
export function checkSocketPath(path: string, cwd: string, label: string, shown = path): string {
  if (path === "") {
    throw new ConfigError(`${label}: ${show(shown)} has an empty socket path; expected unix:PATH`);
  }
  if (path.includes("\0")) {
    throw new ConfigError(`${label}: ${show(shown)} contains a NUL byte`);
  }
  const abs = resolve(cwd, path);
  const bytes = new TextEncoder().encode(abs).length;
  if (bytes > UNIX_PATH_MAX) {
    throw new ConfigError(
      `${label}: ${show(shown)} resolves to ${show(abs)}, ${bytes} bytes long; a unix ` +
        `socket path may have at most ${UNIX_PATH_MAX} bytes`,
    );
  }
  return abs;
}

/** Returns the parsed address, or a reason (" (…)" or "") why it is not one. */
function tryParseHostPort(text: string): TcpBindSpec | string {
  let hostname: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return "";
    hostname = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(hostname)) return ` (${show(hostname)} is not an IPv6 address)`;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return "";
    hostname = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostname.includes(":")) return " (an IPv6 address needs brackets: [V6]:PORT)";
    if (!isHostname(hostname)) return ` (${show(hostname)} is not a hostname or IPv4 address)`;
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port <= 65535)) return ` (port ${show(portText)} is not an integer 0…65535)`;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { kind: "tcp", hostname, port, text: `${host}:${port}` };
}

/** A DNS name (RFC 1123 labels) or a dotted-quad IPv4 address. */
function isHostname(host: string): boolean {
  if (/^[\d.]+$/.test(host)) return isIPv4(host);
  if (host.length === 0 || host.length > 253) return false;
  const label = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  return host.replace(/\.$/, "").split(".").every((part) => label.test(part));
}
