import { describe, expect, test } from "bun:test";
import { eventSchema, newValidEvent, validateEvent } from "../src/actors/ingest-validate.ts";
import { seriesKey, partitionOf } from "../src/runtime/series.ts";
import { createPrng } from "../src/sim/prng.ts";

const now = 1_763_800_000_000;
const bounds = { maxEventAgeMs: 7 * 86400_000, maxFutureSkewMs: 300_000 };
const check = (raw: unknown) => validateEvent(raw, now, bounds, newValidEvent());

describe("ingest - event validation per API.md", () => {
  test("ingest - a full valid event is read as sent; value defaults to 1 and ts to receive time", () => {
    const out = newValidEvent();
    expect(validateEvent({ name: "sensor.temperature", value: 21.5, ts: now - 5, tags: { device: "dev-1" }, id: "evt-1", props: { fw: "2.1" } }, now, bounds, out)).toBeNull();
    expect(out).toEqual({ name: "sensor.temperature", value: 21.5, ts: now - 5, tags: { device: "dev-1" }, id: "evt-1", props: { fw: "2.1" } });
    expect(validateEvent({ name: "clicks" }, now, bounds, out)).toBeNull();
    expect(out).toMatchObject({ value: 1, ts: now });
    expect(validateEvent({ name: "a", ts: new Date(now - 1000).toISOString() }, now, bounds, out)).toBeNull();
    expect(out.ts).toBe(now - 1000);
  });

  const rejected: Array<[unknown, string]> = [
    [[1], "event: must be a JSON object"],
    [{ name: "a", colour: 1 }, '"colour": unknown field'],
    [{}, "name: required string"],
    [{ name: "x".repeat(129) }, "name: must be 1–128 characters"],
    [{ name: "1abc" }, "name: must match ^[A-Za-z_][A-Za-z0-9_.:-]*$"],
    [{ name: "a", value: "3" }, "value: must be a finite number"],
    [{ name: "a", value: null }, "value: must be a finite number"],
    [{ name: "a", ts: 1.5 }, "ts: must be integer milliseconds since the epoch or an ISO-8601 string"],
    [{ name: "a", ts: "yesterday" }, "ts: must be integer milliseconds since the epoch or an ISO-8601 string"],
    [{ name: "a", ts: now - 8 * 86400_000 }, "ts: older than WEIR_MAX_EVENT_AGE"],
    [{ name: "a", ts: now + 600_000 }, "ts: further ahead than WEIR_MAX_FUTURE_SKEW"],
    [{ name: "a", tags: [] }, "tags: must be an object of strings"],
    [{ name: "a", tags: { "bad-key": "v" } }, "tags.bad-key: key must match ^[A-Za-z_][A-Za-z0-9_]*$ and be ≤ 64 characters"],
    [{ name: "a", tags: { k: 1 } }, "tags.k: must be a string"],
    [{ name: "a", tags: { k: "v".repeat(257) } }, "tags.k: over 256 characters"],
    [{ name: "a", tags: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, "tags: at most 16 entries"],
    [{ name: "a", id: "" }, "id: must be a string of 1–128 characters"],
    [{ name: "a", props: { big: "x".repeat(5000) } }, "props: over 4096 bytes encoded"],
  ];
  for (const [raw, error] of rejected) {
    test(`ingest - rejects ${JSON.stringify(raw).slice(0, 60)}`, () => expect(check(raw)).toBe(error));
  }

  test("ingest - the hand-written validator agrees with the zod schema on 20,000 seeded random events", () => {
    const rnd = createPrng(Number(process.env.VALIDATE_SEED ?? 7));
    console.log(`validator differential seed ${process.env.VALIDATE_SEED ?? 7}`);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd.next() * xs.length)];
    const names = ["a", "cpu.load", "_x:y-z", "", "9a", "a b", "x".repeat(128), "x".repeat(129)];
    const values = [1, -2.5, 0, Infinity, NaN, "1", null, undefined];
    const tss = [undefined, now, now - 1, 1.5, new Date(now - 3600_000).toISOString(), "nope", true];
    const tagsList = [undefined, {}, { a: "b" }, { "a-b": "c" }, { a: 1 }, [], { a: "x".repeat(257) }];
    const ids = [undefined, "id-1", "", 5, "x".repeat(129)];
    let agreed = 0;
    for (let i = 0; i < 20_000; i++) {
      const ev: Record<string, unknown> = {};
      if (rnd.next() < 0.95) ev.name = pick(names);
      for (const [k, list] of [["value", values], ["ts", tss], ["tags", tagsList], ["id", ids]] as const) {
        const v = pick(list as unknown[]);
        if (v !== undefined) ev[k] = v;
      }
      if (rnd.next() < 0.02) ev.extra = 1;
      // The zod schema has no clock: keep ts where both agree (the time bounds are tested above).
      const ours = check(ev) === null;
      const theirs = eventSchema.safeParse(ev).success;
      expect({ ev, ours }).toEqual({ ev, ours: theirs });
      agreed++;
    }
    expect(agreed).toBe(20_000);
  });
});

describe("series - keys and routing", () => {
  test("series - key sorts tags and escapes values as Prometheus does", () => {
    expect(seriesKey("cpu", undefined)).toBe("cpu");
    expect(seriesKey("cpu", {})).toBe("cpu");
    expect(seriesKey("cpu", { z: "1", a: 'q"\\\n' })).toBe('cpu{a="q\\"\\\\\\n",z="1"}');
  });
  test("series - partition is stable and spreads keys", () => {
    expect(partitionOf('cpu{host="a"}', 4)).toBe(partitionOf('cpu{host="a"}', 4));
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[partitionOf(`s{i="${i}"}`, 4)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });
});
