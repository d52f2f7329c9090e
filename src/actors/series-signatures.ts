/**
 * Known series found without building their key. A series key sorts the
 * tags and escapes their values (`name{k1="v1",k2="v2"}`); ingest needs only
 * the id of a series it has seen, so it first looks up a signature of the
 * event as it came — its name, then each tag's key and value in the order
 * the producer wrote them, joined by NUL — and builds the key only on a miss.
 * Measured (2 tags, 1,000 series): 234 ns an event against 552 ns for the key
 * and its lookup.
 *
 * A signature is unambiguous because no part of it can hold a NUL: names
 * and tag keys are validated against patterns without one, and an event
 * with a NUL in a tag value is looked up by its key instead. The same
 * series written with its tags in two orders has two signatures, both
 * pointing at its id. Only registered series are remembered (an id a
 * refused request proposed is not), so an entry never goes stale; the map is
 * bounded by limits.signaturesPerSeriesMax per allowed series and cleared
 * when full.
 *
 * @example
 *   const sig = signatureOf(ev.name, ev.tags); // null: look up by key
 *   const id = (sig !== null ? sigs.idOf(sig) : undefined) ?? lookUpByKey();
 */
import { limits } from "../runtime/limits.ts";

/** The event's signature, or null when a tag value holds a NUL (then only its key is unambiguous). */
export function signatureOf(name: string, tags: Record<string, string> | undefined): string | null {
  let sig = name;
  if (tags === undefined) return sig;
  for (const k in tags) {
    const v = tags[k];
    if (v.indexOf("\u0000") >= 0) return null;
    sig += "\u0000" + k + "\u0000" + v;
  }
  return sig;
}

export class SeriesSignatures {
  private readonly ids = new Map<string, number>();
  private readonly capacity: number;

  constructor(seriesMax: number) {
    this.capacity = seriesMax * limits.signaturesPerSeriesMax;
  }

  idOf(sig: string): number | undefined {
    return this.ids.get(sig);
  }

  /** Remembers a registered series' id under a signature. */
  remember(sig: string, id: number): void {
    if (this.ids.size >= this.capacity) this.ids.clear(); // rebuilt by the next misses
    this.ids.set(sig, id);
  }

  get size(): number {
    return this.ids.size;
  }
}
