/**
 * The contract every action keeps (webhook, log, NATS): take a rule's
 * transition without ever making the caller wait, say how its deliveries
 * went, and stop within a bound. The registry (registry.ts) fans an alert
 * out to the actions a rule names.
 *
 * @example
 *   const a: Action = new LogAction({ name: "log" }, { log });
 *   a.deliver(alert);            // returns at once
 *   a.status().delivered;        // 1
 *   await a.close(5_000);
 */
import type { BreakerStatus } from "./breaker.ts";

/** A rule transition (API.md "Rules and actions"), as POSTed to a webhook. */
export interface RuleAlert {
  kind: "rule";
  rule: string;
  /** The series key of the rule instance. */
  series: string;
  state: "pending" | "firing" | "resolved";
  /** The aggregate compared (a number), a trend's class, or null when there was none. */
  value: number | string | null;
  /** The rule's number, or its class (`warning`, `rising`, …) for anomaly and trend rules. */
  threshold: number | string;
  severity: string;
  labels: Record<string, string>;
  advice: string;
  /** Event time of the transition, epoch ms. */
  ts: number;
}

export type ActionType = "webhook" | "log" | "nats";

/** How one alert's delivery to one action ended: the `outcome` label of weir_action_deliveries_total. */
export type DeliveryOutcome = "delivered" | "failed" | "dropped";
export const deliveryOutcomes: readonly DeliveryOutcome[] = ["delivered", "failed", "dropped"];

/** One action's deliveries so far, for `GET /api/v1/rules` and /metrics. */
export interface ActionStatus {
  name: string;
  type: ActionType;
  /** Alerts the receiver took (a 2xx for a webhook). */
  delivered: number;
  /** Alerts given up on: refused (4xx), retries spent, or still undelivered at stop. */
  failed: number;
  /** Alerts pushed out of a full queue (the oldest waiting go first). */
  dropped: number;
  /** Attempts repeated after one that got no usable answer. */
  retries: number;
  /** Alerts waiting, and at most how many may. */
  queueDepth: number;
  queueMax: number;
  /** 1 while an alert is being delivered (or held by an open breaker). */
  inFlight: number;
  lastError: string | null;
  lastErrorAt: number | null;
  lastSuccessAt: number | null;
  /** The circuit breaker, for actions that have one. */
  breaker: BreakerStatus | null;
}

export interface Action {
  readonly name: string;
  readonly type: ActionType;
  /** Hands over one alert and returns at once; never throws for the receiver's sake. */
  deliver(alert: RuleAlert): void;
  status(): ActionStatus;
  /** Waits up to `timeoutMs` for what is queued to be delivered; what is left then counts as failed. */
  close(timeoutMs: number): Promise<void>;
}

/** A status with nothing delivered yet. @example emptyStatus("log", "log", 0) */
export function emptyStatus(name: string, type: ActionType, queueMax: number): ActionStatus {
  return {
    name, type, delivered: 0, failed: 0, dropped: 0, retries: 0, queueDepth: 0, queueMax, inFlight: 0,
    lastError: null, lastErrorAt: null, lastSuccessAt: null, breaker: null,
  };
}
