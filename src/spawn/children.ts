/**
 * The set of child processes that `Deno.Command` owns (workers, hooks,
 * pre-upgrade checks). Deno reaps those itself; anything else that becomes
 * our zombie (an orphan reparented to us as PID 1, or a worker inherited
 * across an in-place upgrade) is ours to reap — and only that, so we never
 * steal an exit status from `Deno.Command`.
 *
 * @module
 */

/** Pids of live `Deno.Command` children. */
export class ChildRegistry {
  #pids = new Set<number>();

  /** Records `child` until Deno has reaped it. Returns it for chaining. */
  track(child: Deno.ChildProcess): Deno.ChildProcess {
    this.#pids.add(child.pid);
    child.status.finally(() => this.#pids.delete(child.pid));
    return child;
  }

  /** Whether `pid` is a child Deno will reap itself. */
  owns(pid: number): boolean {
    return this.#pids.has(pid);
  }
}
