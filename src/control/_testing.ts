/**
 * Shared by the control tests: a recording {@link ControlHandler} and HTTP
 * over a unix socket. Test-only.
 *
 * @module
 */

import type {
  ControlAction,
  ControlHandler,
  ControlResult,
  LogsReport,
  RecentQuery,
  StatusReport,
} from "./api.ts";

/** A status report with two workers, one of an older generation. */
export const SAMPLE_STATUS: StatusReport = {
  master: {
    pid: 4242,
    version: "0.1.0",
    uptime_s: 7512.25,
    config_file: "/app/app.toml",
    generation: 2,
    workers_desired: 2,
    phase: "running",
    reloading: true,
  },
  workers: [
    {
      id: 0,
      pid: 4250,
      generation: 2,
      state: "ready",
      age_s: 192.5,
      restarts: 0,
      last_exit: null,
      status: "serving 3 requests",
    },
    {
      id: 1,
      pid: 4251,
      generation: 1,
      state: "stopping",
      age_s: 7500,
      restarts: 2,
      last_exit: "SIGKILL",
      status: null,
    },
    {
      id: 1,
      pid: null,
      generation: 2,
      state: "booting",
      age_s: 0.1,
      restarts: 2,
      last_exit: "code 1",
      status: null,
    },
  ],
};

/** A handler that records actions and answers as told. */
export class FakeHandler implements ControlHandler {
  readonly actions: ControlAction[] = [];
  report: StatusReport = SAMPLE_STATUS;
  /** Answer for the next actions; a function may throw. */
  answer: (action: ControlAction) => ControlResult = (action) => ({
    ok: true,
    message: `done: ${JSON.stringify(action)}`,
  });

  /** What `GET /v1/logs` answers, and the queries it got. */
  logReport: LogsReport = { captured: true, lines: [], next: 0 };
  readonly logQueries: RecentQuery[] = [];
  /** Called on each status request (to move a rollout on, say). */
  onStatus?: () => void;

  status(): StatusReport {
    this.onStatus?.();
    return this.report;
  }

  logs(query: RecentQuery): LogsReport {
    this.logQueries.push(query);
    return this.logReport;
  }

  act(action: ControlAction): Promise<ControlResult> {
    this.actions.push(action);
    try {
      return Promise.resolve(this.answer(action));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** One HTTP request over the unix socket at `path`. */
export async function unixFetch(
  path: string,
  route: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: string; json: () => unknown }> {
  const client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
  try {
    const res = await fetch(`http://localhost${route}`, { ...init, client });
    const body = await res.text();
    return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) };
  } finally {
    client.close();
  }
}

/** Leaves a stale unix socket (mode 0755) at `path`: bound by a process that exited without removing it. */
export async function makeStaleSocket(path: string): Promise<void> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      "import os,socket,sys; os.umask(0o022); socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      path,
    ],
  }).output();
  if (!out.success) throw new Error(`python3 failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** Awaits `fn`, expecting it to reject with a `type` whose message includes `text`; returns it. */
export async function rejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type: new (...args: any[]) => E,
  text: string,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof type)) throw new Error(`expected a ${type.name}, got ${error}`);
    if (!error.message.includes(text)) {
      throw new Error(`expected a message with ${JSON.stringify(text)}, got ${error.message}`);
    }
    return error;
  }
  throw new Error(`expected a rejection with ${JSON.stringify(text)}`);
}
