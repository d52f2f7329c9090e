/**
 * A seeded, sequential event generator for durability runs. It owns a set of
 * series, sends requests of B events over HTTP at a steady rate, one request
 * in flight, and writes what happened to the ledger. A request that gets no
 * answer (the server was killed) or a 429 / 503 is retried with the same
 * body (same ids, ts and values) once a server is up, until it gets a 202:
 * a re-sent event that the engine had already kept must be deduplicated by
 * its id, which is what the run checks.
 *
 * Event time `ts` is the wall clock when the request is first built, never
 * less than the previous request's, so each series' events arrive in order.
 *
 * @example
 *   const stats = await runGenerator({
 *     seed: 7, series: [0, 1, 2], eventsPerRequest: 10, eventsPerSec: 200, durationMs: 15_000,
 *     idPrefix: "run1-g0", ledger, endpoint: () => weir.endpoint(),
 *   });
 */
import { strict as assert } from "node:assert";
import { mulberry32 } from "../helpers/prng.ts";
import { ledgerSeries, type Ledger, type LedgerEvent } from "./ledger.ts";

export interface GeneratorOptions {
  seed: number;
  /** Series indices this generator owns (no other generator may use them). */
  series: readonly number[];
  eventsPerRequest: number;
  eventsPerSec: number;
  durationMs: number;
  /** Makes ids unique across generators and runs: `<idPrefix>-<n>`. */
  idPrefix: string;
  ledger: Ledger;
  /** The URL of a ready server; waits while there is none. */
  endpoint: () => Promise<string>;
  /** One attempt without an answer by then counts as unanswered. */
  requestTimeoutMs?: number;
  /** A request not acknowledged by then fails the run: the engine never came back. */
  ackDeadlineMs?: number;
}

export interface GeneratorStats {
  requests: number;
  events: number;
  attempts: number;
  /** Requests that needed more than one attempt. */
  retried: number;
  firstTs: number;
  lastTs: number;
}

export class GeneratorError extends Error {
  override name = "GeneratorError";
}

/** Values are small integers, so every sum is exact in a double. */
const valueMin = -1000;
const valueSpan = 2001;
const requestTimeoutMsDefault = 10_000;
const ackDeadlineMsDefault = 60_000;
/** Pause between attempts: lets a killed server's exit be noticed, without hammering its replacement. */
const retryPauseMs = 20;
const eventsPerRequestMax = 10_000;
const eventsPerSecMax = 100_000;

/** Runs until durationMs has passed and the last request is acknowledged. */
export async function runGenerator(o: GeneratorOptions): Promise<GeneratorStats> {
  assert(o.series.length > 0 && o.eventsPerRequest >= 1 && o.eventsPerRequest <= eventsPerRequestMax, "series and batch size");
  assert(o.eventsPerSec > 0 && o.eventsPerSec <= eventsPerSecMax, `eventsPerSec within (0, ${eventsPerSecMax}]`);
  const rand = mulberry32(o.seed);
  const keys = o.series.map(ledgerSeries);
  const stats: GeneratorStats = { requests: 0, events: 0, attempts: 0, retried: 0, firstTs: NaN, lastTs: NaN };
  const requestEveryMs = (o.eventsPerRequest / o.eventsPerSec) * 1000;
  const t0 = performance.now();
  let lastTs = 0;
  let n = 0;
  while (performance.now() - t0 < o.durationMs) {
    const dueMs = t0 + stats.requests * requestEveryMs;
    const now = performance.now();
    if (dueMs > now) await Bun.sleep(dueMs - now); // pacing: the schedule, not a wait for a condition
    const ts = Math.max(lastTs, Date.now());
    lastTs = ts;
    const events: LedgerEvent[] = [];
    const body: object[] = [];
    for (let i = 0; i < o.eventsPerRequest; i++) {
      const s = keys[Math.floor(rand() * keys.length)];
      const e: LedgerEvent = { id: `${o.idPrefix}-${n++}`, series: s.key, ts, value: valueMin + Math.floor(rand() * valueSpan) };
      events.push(e);
      body.push({ name: s.name, tags: s.tags, value: e.value, ts, id: e.id });
    }
    const attempts = await sendUntilAcked(o, JSON.stringify(body), events);
    stats.requests++;
    stats.events += events.length;
    stats.attempts += attempts;
    if (attempts > 1) stats.retried++;
    if (Number.isNaN(stats.firstTs)) stats.firstTs = ts;
    stats.lastTs = ts;
  }
  return stats;
}

/** Posts one body until it gets a 202; resolves the number of attempts. */
async function sendUntilAcked(o: GeneratorOptions, body: string, events: LedgerEvent[]): Promise<number> {
  const deadline = performance.now() + (o.ackDeadlineMs ?? ackDeadlineMsDefault);
  for (let attempt = 1; ; attempt++) {
    if (performance.now() > deadline) {
      throw new GeneratorError(`request of ${events[0].id}… not acknowledged within ${o.ackDeadlineMs ?? ackDeadlineMsDefault} ms (${attempt - 1} attempts)`);
    }
    const url = await o.endpoint();
    const answer = await post(url, body, o.requestTimeoutMs ?? requestTimeoutMsDefault);
    if (answer === null) {
      o.ledger.recordUnanswered(events);
    } else if (answer.status === 202) {
      checkAccepted(answer.text, events);
      o.ledger.recordAck(events);
      return attempt;
    } else if (answer.status === 429 || answer.status === 503) {
      o.ledger.recordRefused();
    } else {
      throw new GeneratorError(`POST /api/v1/events answered ${answer.status}: ${answer.text.slice(0, 500)}`);
    }
    await Bun.sleep(retryPauseMs);
  }
}

/** Status and body, or null when no whole answer came back (refused, reset, timed out). */
async function post(url: string, body: string, timeoutMs: number): Promise<{ status: number; text: string } | null> {
  try {
    const res = await fetch(`${url}/api/v1/events`, {
      method: "POST", body, headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  } catch {
    return null;
  }
}

/** A 202 must accept every event: a rejection means the generator built a bad event, a harness bug. */
function checkAccepted(text: string, events: LedgerEvent[]): void {
  const j = JSON.parse(text) as { accepted?: unknown; rejected?: unknown; errors?: unknown };
  if (j.accepted !== events.length || j.rejected !== 0) {
    throw new GeneratorError(`202 accepted ${String(j.accepted)} of ${events.length}, rejected ${String(j.rejected)}: ${JSON.stringify(j.errors).slice(0, 500)}`);
  }
}
