/**
 * The log action: each alert as one JSON line through weir's log, at
 * `warn` when a rule fires and `info` for pending and resolved. It cannot
 * fall behind, so it has no queue.
 *
 * @example
 *   new LogAction({ name: "log" }, { log }).deliver(alert);
 *   // {"ts":"…","level":"warn","msg":"rule alert","action":"log","alert":{"kind":"rule","rule":"sla",…}}
 */
import type { Log } from "../runtime/log.ts";
import { emptyStatus, type Action, type ActionStatus, type RuleAlert } from "./action.ts";

export class LogAction implements Action {
  readonly type = "log";
  readonly name: string;
  private readonly st: ActionStatus;
  private readonly now: () => number;

  constructor(o: { name: string }, private readonly deps: { log: Log; now?: () => number }) {
    this.name = o.name;
    this.st = emptyStatus(o.name, "log", 0);
    this.now = deps.now ?? Date.now;
  }

  deliver(alert: RuleAlert): void {
    // Nested, not spread: the alert's own `ts` (event time) must not replace the line's.
    this.deps.log[alert.state === "firing" ? "warn" : "info"]("rule alert", { action: this.name, alert });
    this.st.delivered++;
    this.st.lastSuccessAt = this.now();
  }

  status(): ActionStatus {
    return { ...this.st };
  }

  async close(): Promise<void> {}
}
