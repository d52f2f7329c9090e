/**
 * How many queries run at once: at most lakeQueriesPerTokenMax per token
 * (429 past it: that client should wait for its own) and lakeQueriesMax in
 * all (503 past it: the server is busy). Full is a return value, not a
 * wait: the caller answers with Retry-After.
 *
 * @example
 *   const release = gate.enter(token); if (typeof release === "string") return busy(release);
 *   try { ... } finally { release(); }
 */
import { limits } from "../runtime/limits.ts";

export type GateRefusal = "token" | "all";

export class QueryGate {
  private readonly byToken = new Map<string, number>();
  private running = 0;

  constructor(private readonly perTokenMax = limits.lakeQueriesPerTokenMax, private readonly allMax = limits.lakeQueriesMax) {}

  /** A release function, or why the query may not start. */
  enter(who: string): (() => void) | GateRefusal {
    const mine = this.byToken.get(who) ?? 0;
    if (mine >= this.perTokenMax) return "token";
    if (this.running >= this.allMax) return "all";
    this.byToken.set(who, mine + 1);
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      const left = (this.byToken.get(who) ?? 1) - 1;
      if (left === 0) this.byToken.delete(who);
      else this.byToken.set(who, left);
    };
  }
}

/**
 * Statements executing at once (lakeSqlRunningMax): past it a statement
 * waits its turn, first come first served, until its deadline. Admission
 * (QueryGate) bounds how many wait; this bounds how many cores DuckDB
 * takes from ingest at once.
 *
 * @example
 *   const release = await turns.take(deadlineMs); // undefined: the deadline passed while waiting
 */
export class Turns {
  private running = 0;
  /** Waiters, oldest first: each is handed a running slot (true) or told its deadline passed (false). */
  private readonly queue: Array<(handed: boolean) => void> = [];

  constructor(private readonly max: number) {}

  /** A release function once it is this caller's turn, or undefined when `deadlineMs` (performance.now()) came first. */
  async take(deadlineMs: number): Promise<(() => void) | undefined> {
    if (this.running < this.max) this.running++;
    else {
      let wake!: (handed: boolean) => void;
      const handed = new Promise<boolean>((r) => (wake = r));
      this.queue.push(wake);
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(wake);
        if (i >= 0) this.queue.splice(i, 1);
        wake(false);
      }, Math.max(0, deadlineMs - performance.now()));
      const got = await handed;
      clearTimeout(timer);
      if (!got) return undefined;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next === undefined) this.running--;
      else next(true); // the slot passes on: running stays as it is
    };
  }
}
