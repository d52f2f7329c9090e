/**
 * The ledger of a durability run: what the generators know they sent. An
 * event is "acknowledged" once a request holding it got a 202, and then the
 * engine owes it, exactly once, in every window. An event sent in an attempt
 * that got no answer (the server died mid-request) is "in doubt": the engine
 * may or may not have kept it, so only its acknowledgement settles it.
 *
 * Acknowledged events are kept in acknowledgement order. Generators send one
 * request at a time and each owns its series, so within a series this is the
 * order the engine received them in: the tie-break for first / last.
 *
 * @example
 *   const ledger = new Ledger();
 *   ledger.recordUnanswered(events); // connection reset
 *   ledger.recordAck(events);        // the same body, retried, got 202
 *   ledger.inDoubtUnacked();         // []
 */
import { strict as assert } from "node:assert";

export interface LedgerEvent {
  id: string;
  /** The series key as the API spells it: `name{host="h3"}`. */
  series: string;
  ts: number;
  value: number;
}

/** Events one ledger may hold: a bound on the harness's own memory (about 100 bytes each). */
export const ledgerEventsMax = 5_000_000;

export class Ledger {
  readonly acked: LedgerEvent[] = [];
  readonly inDoubt: LedgerEvent[] = [];
  requestsAcked = 0;
  /** Attempts that got no answer: connection refused or reset, or a timeout. */
  attemptsUnanswered = 0;
  /** Attempts answered 429 / 503: nothing of them was accepted, by contract. */
  attemptsRefused = 0;
  private readonly ackedIds = new Set<string>();
  private readonly inDoubtIds = new Set<string>();

  recordAck(events: readonly LedgerEvent[]): void {
    assert(this.acked.length + events.length <= ledgerEventsMax, `ledger over ${ledgerEventsMax} events`);
    for (const e of events) {
      assert(!this.ackedIds.has(e.id), `event id ${e.id} acknowledged twice: the generator reused an id`);
      this.ackedIds.add(e.id);
      this.acked.push(e);
    }
    this.requestsAcked++;
  }

  recordUnanswered(events: readonly LedgerEvent[]): void {
    this.attemptsUnanswered++;
    for (const e of events) {
      if (this.inDoubtIds.has(e.id)) continue; // the second unanswered attempt of one body adds no doubt
      assert(this.inDoubt.length < ledgerEventsMax, `ledger over ${ledgerEventsMax} in-doubt events`);
      this.inDoubtIds.add(e.id);
      this.inDoubt.push(e);
    }
  }

  recordRefused(): void {
    this.attemptsRefused++;
  }

  /** In-doubt events whose request never got a 202: they may be counted or not. Empty when every request ended acknowledged. */
  inDoubtUnacked(): LedgerEvent[] {
    return this.inDoubt.filter((e) => !this.ackedIds.has(e.id));
  }
}

/** The series of index k: name `ledger.m<k>`, one tag `host`. */
export function ledgerSeries(k: number): { name: string; tags: { host: string }; key: string } {
  assert(Number.isInteger(k) && k >= 0, "series index is a whole number");
  const name = `ledger.m${k}`;
  const host = `h${k}`; // no character that the key would escape
  return { name, tags: { host }, key: `${name}{host="${host}"}` };
}
