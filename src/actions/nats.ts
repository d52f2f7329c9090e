/**
 * The NATS action: each alert's JSON (the webhook's body) published to a
 * subject, with the webhook's idempotency key as `Nats-Msg-Id` so a
 * JetStream stream on that subject keeps one copy. Only in NATS mode: the
 * registry builds it when weir hands it a publisher. Publishing is the NATS
 * client's own buffered write, so there is no queue here.
 *
 * @example
 *   new NatsAction({ name: "bus", subject: "ops.alerts" }, { publish: (s, d, id) => nc.publish(s, d, { headers: … }) }).deliver(alert);
 */
import type { Log } from "../runtime/log.ts";
import { emptyStatus, type Action, type ActionStatus, type RuleAlert } from "./action.ts";
import { idempotencyKey } from "./webhook.ts";

/** Publishes one message; throws or rejects when it cannot. */
export type NatsPublish = (subject: string, data: Uint8Array, msgId: string) => void | Promise<void>;

const utf8 = new TextEncoder();

export class NatsAction implements Action {
  readonly type = "nats";
  readonly name: string;
  private readonly st: ActionStatus;
  private readonly now: () => number;
  private pending = 0;
  private readonly idle: Array<() => void> = [];

  constructor(private readonly o: { name: string; subject: string }, private readonly deps: { publish: NatsPublish; log: Log; now?: () => number }) {
    this.name = o.name;
    this.st = emptyStatus(o.name, "nats", 0);
    this.now = deps.now ?? Date.now;
  }

  deliver(alert: RuleAlert): void {
    let done: void | Promise<void>;
    try {
      done = this.deps.publish(this.o.subject, utf8.encode(JSON.stringify(alert)), idempotencyKey(alert));
    } catch (e) {
      return this.failed(e);
    }
    if (!(done instanceof Promise)) return this.delivered();
    this.pending++;
    done.then(() => this.delivered(), (e) => this.failed(e)).finally(() => {
      if (--this.pending === 0) for (const resolve of this.idle.splice(0)) resolve();
    });
  }

  status(): ActionStatus {
    return { ...this.st, inFlight: this.pending };
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([new Promise<void>((resolve) => this.idle.push(resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private delivered(): void {
    this.st.delivered++;
    this.st.lastSuccessAt = this.now();
  }

  private failed(e: unknown): void {
    this.st.failed++;
    this.st.lastError = `nats: ${(e as Error)?.message ?? String(e)}`;
    this.st.lastErrorAt = this.now();
    this.deps.log.warn("nats action: publish failed", { action: this.name, error: this.st.lastError });
  }
}
