/**
 * The webhook action: POSTs each alert's JSON to a URL, with header
 * `Idempotency-Key: <rule>/<series>/<state>/<ts>` so a receiver can tell a
 * retry from a new transition.
 *
 * `deliver()` only enqueues: ingest and the rules never wait on a webhook.
 * Each action has its own bounded queue and its own loop, so a dead or slow
 * receiver delays nothing but itself. The loop sends one alert at a time,
 * in order:
 * - each attempt is cut off after `timeoutMs`;
 * - no answer, 408, 429 and 5xx are retried up to `retriesMax` times with
 *   exponential back-off and jitter, honouring `Retry-After`
 *   (src/client/retry.ts); any other non-2xx fails the alert at once
 *   (redirects are not followed: a POST turned into a GET is no delivery);
 * - a circuit breaker (breaker.ts) opens after `failuresToOpen` consecutive
 *   unanswered attempts: while open, alerts are held in the queue (no
 *   network, no retries spent), then one probe decides;
 * - a full queue drops its oldest waiting alert for the new one, as
 *   Prometheus's notifier does: the latest transitions matter most. Drops
 *   are counted and logged once per overflow.
 *
 * @example
 *   const hook = new WebhookAction({ name: "escalate", url: "http://127.0.0.1:9000/hook", timeoutMs: 5000,
 *     retriesMax: 8, queueMax: 1000, breaker: { failuresToOpen: 5, openMs: 30_000 } }, { log });
 *   hook.deliver(alert); // at once
 *   await hook.close(5_000);
 */
import { isRetryableStatus, retryAfterMs, retryDelayMs, sleep, type FetchLike } from "../client/retry.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { emptyStatus, type Action, type ActionStatus, type RuleAlert } from "./action.ts";
import { Breaker } from "./breaker.ts";

export interface WebhookOptions {
  name: string;
  url: string;
  timeoutMs: number;
  retriesMax: number;
  queueMax: number;
  breaker: { failuresToOpen: number; openMs: number };
}

export interface ActionDeps {
  log: Log;
  fetch?: FetchLike;
  /** Epoch ms; the breaker, Retry-After dates and the status times read it. */
  now?: () => number;
  /** Uniform in [0, 1), for the back-off's jitter. */
  random?: () => number;
}

const stoppedText = "weir stopped before this alert was delivered";

type Attempt = { kind: "delivered" } | { kind: "refused"; error: string } | { kind: "retry"; error: string; retryAfterMs: number | null };

export class WebhookAction implements Action {
  readonly type = "webhook";
  readonly name: string;
  private readonly ring: (RuleAlert | undefined)[];
  private head = 0;
  private waiting = 0;
  private current: RuleAlert | undefined;
  private running = false;
  private closing = false;
  private overflowing = false;
  /** Aborted when close() gives up waiting: sleeps end, the request in flight is cut off. */
  private readonly stop = new AbortController();
  private readonly idle: Array<() => void> = [];
  private readonly breaker: Breaker;
  private readonly st: ActionStatus;
  private readonly fetch: FetchLike;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly o: WebhookOptions, private readonly deps: ActionDeps) {
    this.name = o.name;
    this.ring = new Array(o.queueMax);
    this.breaker = new Breaker(o.breaker.failuresToOpen, o.breaker.openMs);
    this.st = emptyStatus(o.name, "webhook", o.queueMax);
    this.fetch = deps.fetch ?? ((url, init) => globalThis.fetch(url, init));
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  deliver(alert: RuleAlert): void {
    if (this.closing) return this.fail("action closed before this alert came");
    if (this.waiting === this.ring.length) this.dropOldest();
    this.ring[(this.head + this.waiting) % this.ring.length] = alert;
    this.waiting++;
    void this.run();
  }

  status(): ActionStatus {
    return { ...this.st, queueDepth: this.waiting, inFlight: this.current === undefined ? 0 : 1, breaker: this.breaker.status() };
  }

  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (!this.running) return;
    const drained = new Promise<void>((resolve) => this.idle.push(resolve));
    const timer = new AbortController();
    await Promise.race([drained, sleep(timeoutMs, timer.signal)]);
    timer.abort();
    if (this.running) {
      this.stop.abort(); // what is left counts as failed, at once
      await drained;
    }
  }

  /** The one loop of this action: alerts in order, one at a time. */
  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let a = this.shift(); a !== undefined; a = this.shift()) {
        this.current = a;
        await this.deliverOne(a);
        this.current = undefined;
      }
    } finally {
      this.running = false;
      this.overflowing = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private shift(): RuleAlert | undefined {
    if (this.waiting === 0) return undefined;
    const a = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.waiting--;
    return a;
  }

  private dropOldest(): void {
    this.shift();
    this.st.dropped++;
    if (!this.overflowing) this.deps.log.warn("action queue full: dropping the oldest waiting alerts", { action: this.name, queueMax: this.o.queueMax });
    this.overflowing = true;
  }

  /** One alert, until delivered, refused, out of retries, or stopped. */
  private async deliverOne(alert: RuleAlert): Promise<void> {
    const body = JSON.stringify(alert); // the same bytes on every attempt
    const key = idempotencyKey(alert);
    for (let attempt = 0; ; attempt++) {
      await this.whileOpen();
      if (this.stop.signal.aborted) return this.fail(stoppedText);
      const r = await this.post(body, key);
      if (r.kind === "delivered") {
        this.breaker.success();
        this.st.delivered++;
        this.st.lastSuccessAt = this.now();
        return;
      }
      if (r.kind === "refused") {
        this.breaker.success(); // it answered: the receiver is alive
        return this.fail(r.error);
      }
      this.breaker.failure(this.now());
      if (this.stop.signal.aborted) return this.fail(stoppedText);
      if (attempt >= this.o.retriesMax) return this.fail(r.error);
      this.noteError(r.error);
      this.st.retries++;
      const wait = retryDelayMs({ attempt, retryAfterMs: r.retryAfterMs, backoffBaseMs: limits.actionBackoffBaseMs, backoffMaxMs: limits.actionBackoffMaxMs, random: this.random });
      await sleep(wait, this.stop.signal);
    }
  }

  /** Holds the alert in hand while the breaker is open; returns when it may be sent (the probe, if half-open). */
  private async whileOpen(): Promise<void> {
    for (let w = this.breaker.waitMs(this.now()); w > 0 && !this.stop.signal.aborted; w = this.breaker.waitMs(this.now())) {
      await sleep(w, this.stop.signal);
    }
  }

  private async post(body: string, key: string): Promise<Attempt> {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.o.timeoutMs);
    const onStop = () => ctl.abort();
    this.stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      const res = await this.fetch(this.o.url, {
        method: "POST", body, signal: ctl.signal, redirect: "manual",
        headers: { "content-type": "application/json", "idempotency-key": key, "user-agent": "weir" },
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel(); // only the status matters; free the connection
        return { kind: "delivered" };
      }
      const error = `HTTP ${res.status}${await answerText(res)}`;
      if (isRetryableStatus(res.status)) {
        return { kind: "retry", error, retryAfterMs: retryAfterMs(res.headers.get("retry-after"), this.now(), limits.actionRetryAfterMsMax) };
      }
      return { kind: "refused", error: res.status < 400 ? `${error}: redirects are not followed, give the final URL` : error };
    } catch (e) {
      const error = timedOut ? `no answer within ${this.o.timeoutMs} ms` : this.stop.signal.aborted ? "stopped" : `network: ${(e as Error)?.message ?? String(e)}`;
      return { kind: "retry", error, retryAfterMs: null };
    } finally {
      clearTimeout(timer);
      this.stop.signal.removeEventListener("abort", onStop);
    }
  }

  private fail(error: string): void {
    this.st.failed++;
    this.noteError(error);
  }

  private noteError(error: string): void {
    this.st.lastError = error.length > limits.actionErrorCharsMax ? `${error.slice(0, limits.actionErrorCharsMax)}…` : error;
    this.st.lastErrorAt = this.now();
  }
}

/**
 * `<rule>/<series>/<state>/<ts>`, the same for every attempt at one transition.
 * Header values must be printable ASCII, and a series key may hold any
 * text: other characters, and `%` itself, are percent-encoded (UTF-8).
 * @example idempotencyKey(alert) // 'sla/rt{team="support"}/firing/1763800000000'
 */
export function idempotencyKey(a: Pick<RuleAlert, "rule" | "series" | "state" | "ts">): string {
  return `${a.rule}/${a.series}/${a.state}/${a.ts}`.replace(/[^\x20-\x24\x26-\x7e]+/gu, percentEncoded);
}

const utf8 = new TextEncoder();

/** %XX per UTF-8 byte; a lone surrogate becomes U+FFFD's bytes instead of throwing as encodeURIComponent would. */
function percentEncoded(text: string): string {
  let out = "";
  for (const b of utf8.encode(text)) out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  return out;
}

/** ": <the start of the answer's body>", or "" when it has none; reads no more than it keeps. */
async function answerText(res: Response): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < limits.actionErrorCharsMax) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // A body cut off mid-way: keep what came.
  } finally {
    void reader.cancel().catch(() => {});
  }
  text = text.trim();
  return text.length === 0 ? "" : `: ${text}`;
}
