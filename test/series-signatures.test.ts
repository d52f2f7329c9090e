/**
 * Ingest finds a known series by the signature of how it was written, and
 * must land every event on exactly the series its key names: checked
 * against the key itself over seeded events whose tags come in any order
 * and whose values hold quotes, backslashes, newlines and NULs.
 */
import { describe, expect, test } from "bun:test";
import { DedupeSet } from "../src/actors/dedupe.ts";
import { Ingest } from "../src/actors/ingest.ts";
import { SeriesRegistry } from "../src/actors/series-registry.ts";
import { signatureOf } from "../src/actors/series-signatures.ts";
import { seriesKey } from "../src/runtime/series.ts";
import { mulberry32 } from "./helpers/prng.ts";

const bounds = { maxEventAgeMs: 7 * 86_400_000, maxFutureSkewMs: 300_000 };

function newIngest(seriesMax = 1000) {
  const registry = new SeriesRegistry(2, seriesMax);
  const ingest = new Ingest({ partitions: 2, registry, bounds, dedupe: new DedupeSet(600_000) });
  return { registry, ingest };
}

/** The series keys ingest resolved for a request's events, per partition in event order. */
function keysOf(ingest: Ingest, registry: SeriesRegistry, events: object[]): string[][] {
  const out = ingest.accept(events, Date.now());
  expect(out.rejected).toBe(0);
  ingest.commit();
  const enc = { encodeSharedRef: (m: { sid: Uint8Array }) => m } as never; // the messages as objects: their sid column is enough
  return [0, 1].map((p) => {
    const keys: string[] = [];
    for (const m of ingest.encode(p, enc, -1) as Iterable<{ sid: Uint8Array }>) {
      for (const local of new Uint32Array(m.sid.buffer, m.sid.byteOffset, m.sid.byteLength / 4)) keys.push(registry.keyOf(p, local));
    }
    return keys;
  });
}

/** What each partition must hold: every event's own key, in event order. */
function expectedKeys(registry: SeriesRegistry, events: Array<{ name: string; tags: Record<string, string> }>): string[][] {
  const out: string[][] = [[], []];
  for (const e of events) {
    const key = seriesKey(e.name, e.tags);
    out[registry.partitionOf(registry.idOf(key)!)].push(key);
  }
  return out;
}

describe("series signatures", () => {
  test("series signatures - name, then tags as written; null when a value holds a NUL", () => {
    expect(signatureOf("cpu", undefined)).toBe("cpu");
    expect(signatureOf("cpu", { a: "1", b: "2" })).toBe("cpu\u0000a\u00001\u0000b\u00002");
    expect(signatureOf("cpu", { b: "2", a: "1" })).toBe("cpu\u0000b\u00002\u0000a\u00001");
    expect(signatureOf("cpu", { a: "x\u0000y" })).toBeNull();
  });

  test("series signatures - the same series in two tag orders is one series; a refused request's series is not remembered", () => {
    const { registry, ingest } = newIngest();
    const ts = Date.now();
    expect(ingest.accept([{ name: "cpu", value: 1, ts, tags: { host: "a", dc: "x" } }], ts).accepted).toBe(1);
    expect(ingest.signatures.size).toBe(0); // proposed, not registered: the request may still be refused
    ingest.commit();
    keysOf(ingest, registry, [{ name: "cpu", value: 2, ts, tags: { dc: "x", host: "a" } }, { name: "cpu", value: 3, ts, tags: { host: "a", dc: "x" } }]);
    expect(registry.size).toBe(1);
    expect(ingest.signatures.size).toBe(2); // one per order seen
  });

  test("series signatures - a NUL in a value cannot make two series share a signature", () => {
    const { registry, ingest } = newIngest();
    const ts = Date.now();
    const crafted = { name: "cpu", value: 1, ts, tags: { host: "x\u0000dc\u0000y" } }; // would read as host=x, dc=y
    const plain = { name: "cpu", value: 1, ts, tags: { host: "x", dc: "y" } };
    for (let i = 0; i < 2; i++) expect(keysOf(ingest, registry, [plain, crafted]).flat().sort()).toEqual([seriesKey("cpu", crafted.tags), seriesKey("cpu", plain.tags)].sort());
    expect(registry.size).toBe(2);
  });

  test("series signatures - every event lands on the series its key names (seeded, any tag order, awkward values)", () => {
    const rnd = mulberry32(20261204);
    const values = ["a", "b", "q\"uote", "back\\slash", "new\nline", "nul\u0000in", "", "ünï"];
    const { registry, ingest } = newIngest(5000); // 2 names × 9³ tag sets at most
    const ts = Date.now();
    for (let round = 0; round < 20; round++) {
      const events = Array.from({ length: 200 }, () => {
        const tags: Record<string, string> = {};
        const keys = ["host", "dc", "rack"].filter(() => rnd() < 0.7).sort(() => rnd() - 0.5);
        for (const k of keys) tags[k] = values[Math.floor(rnd() * values.length)];
        return { name: rnd() < 0.5 ? "cpu" : "mem", value: 1, ts, tags };
      });
      const got = keysOf(ingest, registry, events);
      expect(got).toEqual(expectedKeys(registry, events)); // each event on its own series, in order
    }
    expect(ingest.signatures.size).toBeGreaterThan(500); // most later events were found by their signature
  });
});
