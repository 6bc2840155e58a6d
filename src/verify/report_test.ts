import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { exitCodeOf, reportJson, reportTable, type VerifyReport } from "./report.ts";

const report = (statuses: ("pass" | "fail" | "n/a")[]): VerifyReport => ({
  command: ["python3", "app.py"],
  workers: 2,
  address: "127.0.0.1:4000",
  duration_s: 12.5,
  notes: [],
  checks: statuses.map((status, i) => ({
    id: (["fd3", "ready", "usr1"] as const)[i],
    status,
    evidence: `evidence ${i}`,
    ...(status === "fail" ? { fix: "do the right thing" } : {}),
  })),
});

Deno.test("exit code: 0 when nothing failed (n/a included), 1 when anything failed", () => {
  assertEquals(exitCodeOf(report(["pass", "n/a", "pass"])), 0);
  assertEquals(exitCodeOf(report(["pass", "fail", "n/a"])), 1);
});

Deno.test("the table shows each row, the fix under a failure, and a summary", () => {
  const text = reportTable(report(["pass", "fail", "n/a"]));
  match(text, /serves on the inherited socket \(fd 3\)\s+pass\s+evidence 0/);
  match(text, /READY=1 within boot_timeout\s+fail\s+evidence 1\n\s+fix: do the right thing/);
  match(text, /1 passed, 1 failed, 1 not applicable \(12\.5 s\): the worker is not ready/);
});

Deno.test("the JSON report has ok, the rows with titles, and the fix", () => {
  const json = JSON.parse(reportJson(report(["pass", "fail"])));
  assertEquals(json.ok, false);
  assertEquals(json.checks[1].title, "READY=1 within boot_timeout");
  assertEquals(json.checks[1].fix, "do the right thing");
  ok(Array.isArray(json.command));
});
