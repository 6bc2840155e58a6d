import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { descendantsOf, parseDisposition, parseStat, parseTcpTable, socketFds } from "./proc.ts";

Deno.test("parseStat reads pid, comm, state, ppid, pgid, sid and start time, with odd command names", () => {
  const fields = Array.from({ length: 20 }, (_, i) => String(i + 100)).join(" ");
  assertEquals(parseStat(`42 (a (b) c) S 7 ${fields}\n`), {
    pid: 42,
    comm: "a (b) c",
    state: "S",
    ppid: 7,
    pgid: 100,
    sid: 101,
    starttime: 117,
  });
});

Deno.test("parseDisposition tells caught, ignored and default signals apart", () => {
  const status = "Name:\tx\nSigIgn:\t0000000000001000\nSigCgt:\t0000000000000200\n";
  assertEquals(parseDisposition(status, 10), "caught"); // SIGUSR1: bit 9
  assertEquals(parseDisposition(status, 13), "ignored"); // SIGPIPE: bit 12
  assertEquals(parseDisposition(status, 15), "default");
  assertEquals(parseDisposition("Name:\tx\n", 10), undefined);
});

Deno.test("parseTcpTable decodes IPv4 and IPv6 addresses, ports, state and inode", () => {
  const v4 =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1\n";
  assertEquals(parseTcpTable(v4), [{
    local: "127.0.0.1:8080",
    localPort: 8080,
    remotePort: 0,
    state: "0A",
    inode: 12345,
  }]);
  const v6 =
    "header\n   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 7 1\n";
  assertEquals(parseTcpTable(v6)[0].local, "[::1]:80");
});

Deno.test("descendantsOf and socketFds see a real child and a real socket", async () => {
  const child = new Deno.Command("sleep", { args: ["5"], stdout: "null", stderr: "null" }).spawn();
  try {
    assertEquals(descendantsOf(Deno.pid).some((p) => p.pid === child.pid), true);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assertEquals(socketFds(Deno.pid).size > 0, true);
  } finally {
    listener.close();
  }
});
