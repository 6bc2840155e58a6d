import { deepStrictEqual } from "node:assert/strict";
import * as net from "node:net";
import { isIPv4, isIPv6 } from "./_ip.ts";

const SAMPLES = [
  "0.0.0.0",
  "127.0.0.1",
  "255.255.255.255",
  "256.1.1.1",
  "1.2.3",
  "1.2.3.4.5",
  "01.2.3.4",
  "1.2.3.04",
  "",
  ".",
  "1..2.3",
  "a.b.c.d",
  " 1.2.3.4",
  "1.2.3.4 ",
  "::",
  "::1",
  "1::",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7",
  "1:2:3:4:5:6:7:8:9",
  "1::2::3",
  "fe80::1%eth0",
  "fe80::1%",
  "fe80::1%a b",
  "::ffff:127.0.0.1",
  "::ffff:256.0.0.1",
  "1:2:3:4:5:6:1.2.3.4",
  "1:2:3:4:5:6:7:1.2.3.4",
  "::1.2.3.4",
  "1.2.3.4::",
  "12345::",
  "g::1",
  ":1",
  "1:",
  ":::",
  "1:2:3:4:5:6:7::",
  "::2:3:4:5:6:7:8",
  "1::1.2.3.4",
  "[::1]",
  "ABCD:EF01:2345:6789:ABCD:EF01:2345:6789",
  "1:2:3:4:5::1.2.3.4",
  "1:2:3:4:5:6::1.2.3.4",
];

Deno.test("isIPv4 and isIPv6 agree with node:net", () => {
  for (const text of SAMPLES) {
    deepStrictEqual([text, isIPv4(text)], [text, net.isIPv4(text)]);
    deepStrictEqual([text, isIPv6(text)], [text, net.isIPv6(text)]);
  }
});
