/**
 * When to retry an HTTP request and how long to wait first: one rule for
 * the emit() client and for weir's webhook actions. It imports nothing, so
 * it runs wherever the client does (Bun, Node, a browser).
 *
 * - Retried: no answer (network error, timeout), 408, 429 and 5xx.
 * - Not retried: any other answer (a 4xx will not get better by sending
 *   the same bytes again; a 3xx is a URL to fix, not a detour to take).
 * - Wait: the server's `Retry-After` when it gives one (seconds or an
 *   HTTP date, cut to `retryAfterMsMax`), plus up to 10 % so that clients
 *   told the same time do not return in step; else exponential back-off
 *   with equal jitter: attempt n waits between half and all of
 *   min(backoffMaxMs, backoffBaseMs · 2ⁿ).
 *
 * @example
 *   isRetryableStatus(503); // true
 *   retryDelayMs({ attempt: 2, retryAfterMs: null, backoffBaseMs: 100, backoffMaxMs: 30_000, random: () => 1 }); // 400
 *   retryAfterMs("2", Date.now(), 60_000); // 2000
 */

/** fetch as both callers use it (Bun's own type carries extras a stand-in need not have). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** Whether an HTTP status means "try the same request again later". */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Milliseconds a `Retry-After` header asks for, cut to [0, maxMs]; null when
 * absent or unreadable (then the caller backs off on its own).
 * @example retryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT", Date.now(), 60_000) // 0: that date is past
 */
export function retryAfterMs(header: string | null, nowMs: number, maxMs: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    // An HTTP date names its day ("Wed, 21 Oct 2015 ..."); Date.parse alone would read "-1" as a year.
    if (!/[A-Za-z]/.test(text)) return null;
    const at = Date.parse(text);
    if (!Number.isFinite(at)) return null;
    ms = at - nowMs;
  }
  return Math.min(maxMs, Math.max(0, ms));
}

export interface RetryDelayInput {
  /** 0 for the wait after the first failed attempt. */
  attempt: number;
  /** What the server asked for (retryAfterMs), or null. */
  retryAfterMs: number | null;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Uniform in [0, 1): Math.random, or a seeded one in tests. */
  random: () => number;
}

/** How long to wait before the next attempt. @example retryDelayMs({ ...o, retryAfterMs: 1000 }) // 1000–1100 */
export function retryDelayMs(o: RetryDelayInput): number {
  if (o.retryAfterMs !== null) return o.retryAfterMs * (1 + 0.1 * o.random());
  // 2^attempt overflows to Infinity long after the cap applies; min() keeps it finite.
  const ceiling = Math.min(o.backoffMaxMs, o.backoffBaseMs * 2 ** o.attempt);
  return ceiling / 2 + (ceiling / 2) * o.random();
}

/**
 * Resolves after `ms`, or at once when `signal` aborts. Never rejects.
 * `keepAlive: false` lets Node and Bun exit meanwhile (a timer that only
 * paces flushes must not hold a finished producer open).
 */
export function sleep(ms: number, signal?: AbortSignal, keepAlive = true): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    if (!keepAlive) unrefTimer(timer);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Lets the process exit while `timer` is pending (Node and Bun); a no-op in a browser. */
export function unrefTimer(timer: unknown): void {
  const t = timer as { unref?: () => void };
  if (typeof t?.unref === "function") t.unref();
}
