/**
 * IPv4 and IPv6 address syntax, as `node:net`'s `isIPv4`/`isIPv6` read it.
 * Written out because the running master parses binds (an upgrade's
 * inherited sockets, `metrics_bind`) and `node:net` alone costs it ~3 MB
 * of memory (BENCHMARKS.md, "Master memory"). Pure; tested against
 * `node:net` in _ip_test.ts.
 *
 * @module
 */

const OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
const V4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const GROUP = /^[0-9a-fA-F]{1,4}$/;
const ZONE = /^[0-9a-zA-Z\-._~]+$/;

/** Whether `text` is a dotted-quad IPv4 address (no leading zeros). */
export function isIPv4(text: string): boolean {
  return V4.test(text);
}

/** Whether `text` is an IPv6 address (RFC 4291 text forms, an optional `%zone`). */
export function isIPv6(text: string): boolean {
  const percent = text.indexOf("%");
  if (percent >= 0 && !ZONE.test(text.slice(percent + 1))) return false;
  const address = percent >= 0 ? text.slice(0, percent) : text;
  const halves = address.split("::");
  if (halves.length > 2) return false;
  const groups = (half: string) => half === "" ? [] : half.split(":");
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const all = [...head, ...tail];
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const last = i === all.length - 1;
    if (last && all[i].includes(".") && (tail.length > 0 || halves.length === 1)) {
      if (!isIPv4(all[i])) return false;
      count += 2;
    } else if (GROUP.test(all[i])) count += 1;
    else return false;
  }
  return halves.length === 2 ? count <= 7 : count === 8;
}
