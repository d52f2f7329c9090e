/**
 * Results out on NATS (API.md "NATS"): each result first published live
 * also goes, as MessagePack, to `weir.out.windows.<spec>`,
 * `weir.out.anomalies` (and `weir.out.alerts`, as an alert of kind
 * anomaly) or `weir.out.trends`, with a `Nats-Msg-Id` naming the result
 * (series, window and start; or series and time). A result a replay
 * computes again after a restart carries the same id, so a stream that
 * captures `weir.out.>` stores it once (within its duplicate window).
 * Core publishes: nothing waits on them. While the link is down they are
 * not published at all but counted (`dropped`): the client would otherwise
 * queue every one of them in memory until NATS returns, with no bound. The
 * results stay in weir's store and live feed.
 *
 * @example engine.setResultSink(new NatsResults(link));
 */
import { encode } from "@msgpack/msgpack";
import { headers } from "@nats-io/transport-node";
import type { WindowRecord } from "../actors/store.ts";
import type { ResultSink } from "../engine/partition-outputs.ts";
import type { NatsLink } from "./connection.ts";

export const outSubjects = {
  windows: (label: string) => `weir.out.windows.${label}`,
  anomalies: "weir.out.anomalies",
  alerts: "weir.out.alerts",
  trends: "weir.out.trends",
} as const;

export class NatsResults implements ResultSink {
  /** Results not published because the link was down. */
  dropped = 0;

  constructor(private readonly link: NatsLink) {}

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

  private publish(subject: string, id: string, body: object): void {
    if (!this.link.connected()) {
      this.dropped++;
      return;
    }
    const h = headers();
    h.set("Nats-Msg-Id", id);
    h.set("Content-Type", "application/msgpack");
    try {
      this.link.nc.publish(subject, encode(body), { headers: h });
    } catch {
      this.dropped++; // closed or draining between the check and the publish: the result stays in the store and the live feed
    }
  }
}
