/**
 * A circuit breaker for one action, as pure logic over an injected clock:
 * `closed` sends freely; after `failuresToOpen` consecutive failures it is
 * `open` and sends nothing for `openMs`; then it is `half_open` and lets
 * one probe through: a success closes it, a failure opens it again for
 * another `openMs`. So a dead webhook costs one request per `openMs`, not
 * one per alert and retry.
 *
 * A failure is an attempt with no usable answer (no connection, a timeout,
 * 408, 429, 5xx). A refusal (another 4xx) is an answer: the receiver is
 * alive, so it counts as a success here even though the alert failed.
 *
 * @example
 *   const b = new Breaker(3, 30_000);
 *   b.failure(0); b.failure(0); b.failure(0);
 *   b.waitMs(1_000);  // 29000: open
 *   b.waitMs(30_000); // 0: half_open, this attempt is the probe
 *   b.success();      // closed
 */
import { strict as assert } from "node:assert";

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerStatus {
  state: BreakerState;
  consecutiveFailures: number;
  /** When an open breaker lets its probe through (epoch ms), else null. */
  openUntil: number | null;
  /** Times it has opened. */
  opens: number;
}

export class Breaker {
  private state: BreakerState = "closed";
  private failures = 0;
  private openUntil = 0;
  private opens = 0;

  constructor(readonly failuresToOpen: number, readonly openMs: number) {
    assert(Number.isInteger(failuresToOpen) && failuresToOpen >= 1, "a breaker opens after at least one failure");
    assert(openMs >= 0);
  }

  /** 0 when an attempt may go now, else how long until it may. Past openUntil it turns half-open: the next attempt is the probe. */
  waitMs(nowMs: number): number {
    if (this.state !== "open") return 0;
    if (nowMs < this.openUntil) return this.openUntil - nowMs;
    this.state = "half_open";
    return 0;
  }

  success(): void {
    this.state = "closed";
    this.failures = 0;
  }

  failure(nowMs: number): void {
    this.failures++;
    if (this.state === "half_open" || (this.state === "closed" && this.failures >= this.failuresToOpen)) {
      this.state = "open";
      this.openUntil = nowMs + this.openMs;
      this.opens++;
    }
  }

  status(): BreakerStatus {
    return {
      state: this.state,
      consecutiveFailures: this.failures,
      openUntil: this.state === "open" ? this.openUntil : null,
      opens: this.opens,
    };
  }
}
