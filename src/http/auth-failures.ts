/**
 * Failed authentication, counted per client address, so a token cannot be
 * guessed by brute force (issue 19, OWASP API2): past
 * limits.authFailuresPerWindowMax missing or unknown tokens from one
 * address within limits.authFailureWindowMs, that address gets 429 with
 * Retry-After, before its token is even looked at, until the window ends.
 * A wrong role (403) is not a failure: the token was right. At most
 * limits.authFailureAddressesMax addresses are tracked; past it the one
 * tracked longest is forgotten (a flood of addresses cannot grow memory).
 *
 * @example
 *   const f = new AuthFailures();
 *   const wait = f.blockedFor("10.0.0.7", Date.now()); // seconds, 0 when it may try
 *   f.fail("10.0.0.7", Date.now());
 */
import { limits } from "../runtime/limits.ts";

interface Tally { startMs: number; count: number }

export class AuthFailures {
  private readonly byAddress = new Map<string, Tally>();

  constructor(
    private readonly maxPerWindow: number = limits.authFailuresPerWindowMax,
    private readonly windowMs: number = limits.authFailureWindowMs,
    private readonly addressesMax: number = limits.authFailureAddressesMax,
  ) {}

  /** Seconds the address must wait before its token is looked at again; 0 when it may try now. */
  blockedFor(address: string, nowMs: number): number {
    const t = this.byAddress.get(address);
    if (t === undefined || nowMs - t.startMs >= this.windowMs || t.count < this.maxPerWindow) return 0;
    return Math.max(1, Math.ceil((t.startMs + this.windowMs - nowMs) / 1000));
  }

  /** One more failure of the address. */
  fail(address: string, nowMs: number): void {
    const t = this.byAddress.get(address);
    if (t !== undefined && nowMs - t.startMs < this.windowMs) {
      t.count++;
      return;
    }
    this.byAddress.delete(address); // re-inserted last: the Map's order is then oldest window first
    if (this.byAddress.size >= this.addressesMax) this.byAddress.delete(this.byAddress.keys().next().value!);
    this.byAddress.set(address, { startMs: nowMs, count: 1 });
  }

  get size(): number {
    return this.byAddress.size;
  }
}
