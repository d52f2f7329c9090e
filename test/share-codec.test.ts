/**
 * A message's share for one partition (cluster mode): split by the series'
 * partition exactly as the engine routes, and back as the same parsed
 * events; a share weir did not write is refused with a reason, whatever
 * buffer it arrives in.
 */
import { describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { BodyError } from "../src/actors/ingest-body.ts";
import { parseEvents } from "../src/actors/ingest-parse.ts";
import { partitionOf, seriesKey } from "../src/runtime/series.ts";
import { decodeShare, encodeShare, splitParsed } from "../src/nats/share-codec.ts";

const bounds = { maxEventAgeMs: 86_400_000, maxFutureSkewMs: 60_000 };
const now = 1_796_400_000_000;

describe("share codec", () => {
  test("share codec - each valid event goes to its series' partition, in message order, with its id and props; back unchanged", () => {
    const items = Array.from({ length: 40 }, (_, i) => ({
      name: "m", tags: { s: String(i % 9) }, value: i / 4, ts: now - i, ...(i % 5 === 0 ? { id: `e${i}` } : {}), ...(i === 7 ? { props: { user: "u7" } } : {}),
    }));
    items.push({ name: "9bad", value: 1 } as never);
    const parsed = parseEvents(items, now, bounds);
    const parts = splitParsed(parsed, 4);
    let total = 0;
    for (const [p, share] of parts) {
      const [bytes, ...more] = encodeShare(share);
      expect(more).toEqual([]);
      const back = decodeShare(Buffer.from(bytes)); // as the NATS client hands it over: a Node Buffer
      total += back.n;
      const events = Array.from({ length: back.n }, (_, k) => {
        const s = back.distinct[back.series[k]];
        expect(partitionOf(seriesKey(s.name, s.tags), 4)).toBe(p);
        return { v: back.value[k], ts: back.ts[k], id: back.ids?.[k], props: back.props?.[k] };
      });
      const want = items.filter((e, i) => i < 40 && partitionOf(seriesKey("m", e.tags), 4) === p)
        .map((e) => ({ v: e.value, ts: e.ts, id: (e as { id?: string }).id, props: (e as { props?: Record<string, unknown> }).props }));
      expect(events).toEqual(want); // a share with no id (or props) has none listed: undefined on both sides
    }
    expect(total).toBe(40); // the invalid one is the splitter's to refuse, not a share's
  });

  test("share codec - a share over the size bound is cut in pieces that keep the order", () => {
    const items = Array.from({ length: 20_000 }, (_, i) => ({ name: "m", tags: { s: `series-with-a-long-name-${i}` }, value: i, ts: now - 1 }));
    const parsed = parseEvents(items, now, bounds);
    const pieces = encodeShare(parsed);
    expect(pieces.length).toBeGreaterThan(1);
    const values = pieces.flatMap((b) => [...decodeShare(b).value]);
    expect(values).toEqual(items.map((e) => e.value));
  });

  test("share codec - bytes weir did not write are refused, naming what is wrong", () => {
    const refused = (b: Uint8Array) => {
      try {
        decodeShare(b);
        return "taken";
      } catch (e) {
        expect(e).toBeInstanceOf(BodyError);
        return (e as Error).message;
      }
    };
    expect(refused(new TextEncoder().encode('[{"name":"cpu"}]'))).toStartWith("share: not MessagePack");
    expect(refused(encode([{ name: "cpu" }]))).toBe("share: not a weir share");
    expect(refused(new Uint8Array([0xc1]))).toStartWith("share: not MessagePack");
    const ok = { v: 1, n: 1, ts: new Uint8Array(new Float64Array([now]).buffer), value: new Uint8Array(new Float64Array([1]).buffer), series: new Uint8Array(new Uint32Array([0]).buffer), distinct: [["m", null]], ids: null, props: null };
    expect(refused(encode(ok))).toBe("taken");
    expect(refused(encode({ ...ok, series: new Uint8Array(new Uint32Array([3]).buffer) }))).toBe("share: a series index out of range");
    expect(refused(encode({ ...ok, value: new Uint8Array(new Float64Array([NaN]).buffer) }))).toBe("share: a time or value not finite");
    expect(refused(encode({ ...ok, ts: new Uint8Array(4) }))).toBe("share: ts column of 4 bytes, want 8");
    expect(refused(encode({ ...ok, ids: ["a", "b"] }))).toBe("share: ids of another length");
  });
});
