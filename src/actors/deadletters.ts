/**
 * The dead-letter list: the newest limits.deadlettersMax rejected and late
 * events with their reason, in a fixed ring in memory. A late event is kept
 * as three numbers in typed arrays (series id, event time, value) and turned
 * into an event only when the list is read, so a flood of late events
 * allocates nothing here. Older entries are overwritten (the bound is the
 * contract); every one is still counted in weir_events_rejected_total or
 * weir_events_late_total, and every accepted event stays in the raw log.
 * The engine keeps the list across restarts: takeFresh() hands it the
 * entries added since the last call (late ones described then), which the
 * store writer appends to table `deadletters` (keeping the newest
 * limits.deadlettersMax), and restore() puts them back at start-up.
 *
 * @example
 *   const dl = new DeadLetters(10_000, (id, ts, value) => ({ name: nameOf(id), ts, value }));
 *   dl.addLate(Date.now(), seriesId, ts, value);
 *   dl.addRejected(Date.now(), "name: required string", { value: 1 });
 *   dl.list(0, 100); // [{ ts, reason, event }] newest first
 *
 * A rejected event is kept as received, so with `pii` configured it and
 * its reason are scrubbed here (every string at every depth, listed keys
 * whole: pii.ts any()), before it is cut to size: this list is where every
 * input path's refusals meet (HTTP, NATS previews, cluster shares), and it
 * is written to the store and the lake.
 */
import { limits } from "../runtime/limits.ts";
import type { PiiScrubber } from "./pii.ts";

/** `source`: where a rejected event came from when not from an HTTP request, e.g. { nats: { stream, seq } }. */
export interface DeadLetter { ts: number; reason: string; event: unknown; source?: Record<string, unknown> }

const lateReason = "late";

export class DeadLetters {
  private readonly ts: Float64Array;
  private readonly lateId: Float64Array;
  private readonly lateTs: Float64Array;
  private readonly lateValue: Float64Array;
  /** The reason of a rejected entry, or null for a late one. */
  private readonly reasons: Array<string | null>;
  private readonly events: unknown[];
  private readonly sources: Array<Record<string, unknown> | undefined>;
  private next = 0;
  private count = 0;
  /** Entries added since start, and how many of them takeFresh() has handed over. */
  private added = 0;
  private taken = 0;

  constructor(readonly max: number, private readonly describeLate: (seriesId: number, ts: number, value: number) => unknown, private readonly pii: PiiScrubber | null = null) {
    this.ts = new Float64Array(max);
    this.lateId = new Float64Array(max);
    this.lateTs = new Float64Array(max);
    this.lateValue = new Float64Array(max);
    this.reasons = new Array(max).fill(null);
    this.events = new Array(max).fill(undefined);
    this.sources = new Array(max).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  addLate(atMs: number, seriesId: number, ts: number, value: number): void {
    const i = this.slot(atMs);
    this.reasons[i] = null;
    this.events[i] = undefined;
    this.sources[i] = undefined;
    this.lateId[i] = seriesId;
    this.lateTs[i] = ts;
    this.lateValue[i] = value;
  }

  /** A refused event, scrubbed (with pii configured) and cut to limits.deadletterEventCharsMax. */
  addRejected(atMs: number, reason: string, event: unknown, source?: Record<string, unknown>): void {
    const pii = this.pii;
    this.put(atMs, pii === null ? reason : pii.text(reason), boundedEvent(pii === null ? event : pii.any(event)), source);
  }

  private put(atMs: number, reason: string, event: unknown, source?: Record<string, unknown>): void {
    const i = this.slot(atMs);
    this.reasons[i] = reason;
    this.events[i] = event;
    this.sources[i] = source;
  }

  /** The entries added since the last call, oldest first (those already overwritten by newer ones are not). */
  takeFresh(): DeadLetter[] {
    const n = Math.min(this.added - this.taken, this.count);
    this.taken = this.added;
    return n === 0 ? [] : this.list(-Infinity, n).reverse();
  }

  /** Entries read back from the store at start-up, oldest first (late ones as they were described). */
  restore(entries: readonly DeadLetter[]): void {
    for (const e of entries) this.put(e.ts, e.reason, e.event, e.source); // as stored: already scrubbed and cut
    this.taken = this.added; // already stored
  }

  /** Entries with ts ≥ since, newest first, at most `limit`. */
  list(since: number, limit: number): DeadLetter[] {
    const out: DeadLetter[] = [];
    for (let k = 1; k <= this.count && out.length < limit; k++) {
      const i = (this.next - k + this.max) % this.max;
      if (this.ts[i] < since) continue;
      const reason = this.reasons[i];
      out.push(reason === null
        ? { ts: this.ts[i], reason: lateReason, event: this.describeLate(this.lateId[i], this.lateTs[i], this.lateValue[i]) }
        : { ts: this.ts[i], reason, event: this.events[i], ...(this.sources[i] === undefined ? {} : { source: this.sources[i] }) });
    }
    return out;
  }

  private slot(atMs: number): number {
    this.added++;
    const i = this.next;
    this.ts[i] = atMs;
    this.next = (i + 1) % this.max;
    if (this.count < this.max) this.count++;
    return i;
  }
}

/**
 * A rejected event as kept: itself when its JSON is small, else that JSON
 * cut to limits.deadletterEventCharsMax (an invalid event can be as large
 * as a body; the list must not hold megabytes each).
 */
function boundedEvent(event: unknown): unknown {
  let text: string;
  try {
    text = JSON.stringify(event) ?? String(event);
  } catch {
    text = String(event); // e.g. a MessagePack body holding a BigInt
  }
  return text.length <= limits.deadletterEventCharsMax ? event : text.slice(0, limits.deadletterEventCharsMax) + "…";
}
