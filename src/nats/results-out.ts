/**
 * Results out on NATS (API.md "NATS"): each result first published live
 * also goes, as MessagePack, to `weir.out.windows.<spec>`,
 * `weir.out.anomalies` (and `weir.out.alerts`, as an alert of kind
 * anomaly), `weir.out.trends`, or `weir.out.alerts` (a rule's transition, kind rule), with a `Nats-Msg-Id` naming the result
 * (series, window and start; or series and time). A result a replay
 * computes again after a restart carries the same id, so a stream that
 * captures `weir.out.>` stores it once (within its duplicate window).
 * Core publishes: nothing waits on them. While the link is down they wait
 * in a queue of their own, bounded by limits.natsResultsWaitingMax (the
 * client's would have no bound), and go out in order once it is back
 * (flush(), called by a timer and before each publish); past the bound a
 * result is not published but counted (`dropped`): it stays in weir's
 * store and live feed. In cluster mode the other processes copy results
 * from WEIR_OUT, so one dropped there is missing from their stores.
 *
 * @example engine.setResultSink(new NatsResults(link));
 */
import { encode } from "@msgpack/msgpack";
import { headers } from "@nats-io/transport-node";
import type { WindowRecord } from "../actors/store.ts";
import type { RuleTransition } from "../actors/rules/rule-set.ts";
import type { ResultSink } from "../engine/partition-outputs.ts";
import { limits } from "../runtime/limits.ts";
import type { NatsLink } from "./connection.ts";

/** Every result subject (stream WEIR_OUT captures them in cluster mode). */
export const outSubjectFilter = "weir.out.>";

export const outSubjects = {
  windows: (label: string) => `weir.out.windows.${label}`,
  anomalies: "weir.out.anomalies",
  alerts: "weir.out.alerts",
  trends: "weir.out.trends",
} as const;

/** Header naming the weir process that computed a result (cluster mode: a process does not copy its own results back). */
export const nodeHeader = "Weir-Node";

export class NatsResults implements ResultSink {
  /** Results not published because the link was down longer than the queue's bound lasted. */
  dropped = 0;
  /** Computed while the link was down, in order, waiting for it. */
  private readonly waiting: Array<{ subject: string; id: string; body: object }> = [];
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly link: NatsLink, private readonly node?: string) {
    this.timer = setInterval(() => this.flush(), limits.natsResultsFlushMs);
    this.timer.unref();
  }

  /** Results waiting for the link. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Publishes what waited, if the link is up. */
  flush(): void {
    let i = 0;
    while (i < this.waiting.length && this.link.connected()) {
      const w = this.waiting[i];
      if (!this.send(w.subject, w.id, w.body)) break;
      i++;
    }
    if (i > 0) this.waiting.splice(0, i);
  }

  /** Stops the flush timer (the link closes after). */
  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  window(label: string, id: string, result: WindowRecord): void {
    this.publish(outSubjects.windows(label), id, { type: "window", ...result });
  }

  anomaly(id: string, anomaly: Record<string, unknown>): void {
    this.publish(outSubjects.anomalies, id, { type: "anomaly", ...anomaly });
    this.publish(outSubjects.alerts, `alert|${id}`, { type: "alert", kind: "anomaly", ...anomaly });
  }

  trend(id: string, trend: Record<string, unknown>): void {
    this.publish(outSubjects.trends, id, { type: "trend", ...trend });
  }

  alert(id: string, alert: RuleTransition): void {
    this.publish(outSubjects.alerts, id, { type: "alert", ...alert });
  }

  private publish(subject: string, id: string, body: object): void {
    if (this.waiting.length > 0) this.flush();
    if (this.waiting.length === 0 && this.link.connected() && this.send(subject, id, body)) return;
    if (this.waiting.length >= limits.natsResultsWaitingMax) {
      this.dropped++;
      return;
    }
    this.waiting.push({ subject, id, body });
  }

  /** One core publish; false when the link closed or is draining meanwhile. */
  private send(subject: string, id: string, body: object): boolean {
    const h = headers();
    h.set("Nats-Msg-Id", id);
    h.set("Content-Type", "application/msgpack");
    if (this.node !== undefined) h.set(nodeHeader, this.node);
    try {
      this.link.nc.publish(subject, encode(body), { headers: h });
      return true;
    } catch {
      return false; // closed or draining between the check and the publish
    }
  }
}
