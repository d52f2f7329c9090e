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
