import { describe, expect, test } from "bun:test";
import { Fanout, type LiveClient } from "../src/actors/fanout.ts";
import { limits } from "../src/runtime/limits.ts";

function client(buffered = 0) {
  const sent: Array<Record<string, unknown>> = [];
  let closed: [number, string] | undefined;
  const c: LiveClient = { send: (t) => void sent.push(JSON.parse(t)), close: (code, reason) => { closed = [code, reason]; }, bufferedAmount: () => buffered };
  return { c, sent, closed: () => closed };
}
const win = (series: string, avg: number) => ({ type: "window", series, window: "10s", start: 0, end: 10_000, avg });

describe("fanout - live subscriptions", () => {
  test("fanout - hello, subscribe by spec and glob, conflate to the latest per series within the throttle", () => {
    const f = new Fanout({ windows: ["10s", "60s/10s"], version: "v" });
    const a = client();
    const id = f.add(a.c);
    expect(a.sent).toEqual([{ type: "hello", version: "v", windows: ["10s", "60s/10s"] }]);
    f.handleOp(id, JSON.stringify({ op: "subscribe", topics: ["windows:10s:cpu*"] }));
    f.publish("windows", "10s", "cpu{h=\"a\"}", win("cpu{h=\"a\"}", 1), 0);
    f.publish("windows", "10s", "cpu{h=\"a\"}", win("cpu{h=\"a\"}", 2), 0);
    f.publish("windows", "10s", "mem", win("mem", 3), 0);
    f.publish("windows", "60s/10s", "cpu{h=\"a\"}", win("cpu{h=\"a\"}", 4), 0);
    f.flush(1000);
    expect(a.sent.slice(1)).toEqual([win("cpu{h=\"a\"}", 2)]);
    f.publish("windows", "10s", "cpu", win("cpu", 5), 0);
    f.flush(1050); // inside the 100 ms throttle
    expect(a.sent.length).toBe(2);
    f.flush(1100);
    expect(a.sent.slice(2)).toEqual([win("cpu", 5)]);
  });

  test("fanout - running-values subscriptions are told when their set changes: once per new (spec, glob), once when its last subscriber goes", () => {
    const f = new Fanout({ windows: ["10s", "60s/10s"], version: "v" });
    const told: Array<Array<{ spec: string; glob: string }>> = [];
    f.onUpdatesInterest = (subs) => told.push(subs);
    const a = f.add(client().c);
    const b = f.add(client().c);
    f.handleOp(a, JSON.stringify({ op: "subscribe", topics: ["updates:10s:cpu*", "windows:10s:cpu*"] }));
    f.handleOp(b, JSON.stringify({ op: "subscribe", topics: ["updates:10s:cpu*"] })); // the same: not told again
    f.handleOp(b, JSON.stringify({ op: "subscribe", topics: ["updates:60s/10s:mem"] }));
    expect(told).toEqual([[{ spec: "10s", glob: "cpu*" }], [{ spec: "10s", glob: "cpu*" }, { spec: "60s/10s", glob: "mem" }]]);
    f.remove(a); // b still asks for cpu*
    expect(told.length).toBe(2);
    f.remove(b);
    expect(told.slice(2)).toEqual([[]]);
    expect(f.updatesInterest()).toEqual([]);
  });

  test("fanout - bad frames are answered with an error naming the field; the client stays", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const a = client();
    const id = f.add(a.c);
    f.handleOp(id, "{");
    f.handleOp(id, JSON.stringify({ op: "subscribe", topics: ["windows:5m:*"] }));
    f.handleOp(id, JSON.stringify({ op: "subscribe", topics: ["bogus"] }));
    f.handleOp(id, JSON.stringify({ op: "throttle", ms: -1 }));
    f.handleOp(id, JSON.stringify({ op: "subscribe", topics: Array.from({ length: limits.wsTopicsPerClientMax + 1 }, (_, i) => `trends:${i}`) }));
    expect(a.sent.slice(1).map((m) => m.error)).toEqual([
      "frame: invalid JSON",
      'topics: "windows:5m:*": unknown window spec (have 10s)',
      'topics: "bogus": unknown topic (windows:<spec>:<glob>, updates:<spec>:<glob>, anomalies[:<glob>], trends[:<glob>], alerts, stats)',
      "ms: must be ≥ 0",
      "topics: at most 1000 items",
    ]);
    expect(f.size).toBe(1);
  });

  test("fanout - a client whose socket buffer is over the bound is closed with 1013; others still get theirs", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const slow = client(limits.wsBackpressureBytesMax + 1);
    const fast = client();
    for (const c of [slow, fast]) f.handleOp(f.add(c.c), JSON.stringify({ op: "subscribe", topics: ["windows:10s:*"] }));
    f.publish("windows", "10s", "cpu", win("cpu", 1), 0);
    expect(f.closed).toEqual({ slow: 0, full: 0 });
    f.flush(1000);
    expect(slow.closed()).toEqual([1013, "client too slow: send buffer over limit"]);
    expect(fast.sent.slice(1)).toEqual([win("cpu", 1)]);
    expect(f.size).toBe(1);
    expect(f.closed).toEqual({ slow: 1, full: 0 }); // weir_ws_closed_total{reason="slow"}
  });
});

describe("fanout - client bound", () => {
  test("fanout - past limits.wsClientsMax a new client is closed with 1013 and counted; one leaving makes room", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const ids = Array.from({ length: limits.wsClientsMax }, () => f.add(client().c));
    expect(f.size).toBe(limits.wsClientsMax);
    const extra = client();
    expect(f.add(extra.c)).toBe(-1);
    expect(extra.closed()).toEqual([1013, "too many live clients"]);
    expect(extra.sent).toEqual([]);
    expect(f.closed).toEqual({ slow: 0, full: 1 });
    f.remove(ids[0]);
    const next = client();
    expect(f.add(next.c)).toBeGreaterThan(0);
    expect(next.closed()).toBeUndefined();
    expect(f.size).toBe(limits.wsClientsMax);
  });
});

describe("fanout - retained latest windows", () => {
  test("fanout - a new subscriber gets the latest window of each matching series at once, not older ones", () => {
    const f = new Fanout({ windows: ["10s", "60s/10s"], version: "v" });
    f.publish("windows", "10s", "cpu", win("cpu", 1), 0, "cpu|0");
    f.publish("windows", "10s", "cpu", win("cpu", 2), 0, "cpu|10000");
    f.publish("windows", "10s", "mem", win("mem", 3), 0, "mem|0");
    f.publish("windows", "60s/10s", "cpu", win("cpu", 4), 0, "cpu|0");
    const a = client();
    f.handleOp(f.add(a.c), JSON.stringify({ op: "subscribe", topics: ["windows:10s:c*"] }));
    f.flush(1000);
    expect(a.sent.slice(1)).toEqual([win("cpu", 2)]);
    const b = client();
    f.handleOp(f.add(b.c), JSON.stringify({ op: "subscribe", topics: ["trends"] }));
    f.flush(1000);
    expect(b.sent.length).toBe(1); // hello only: trends retain nothing
  });

  test("fanout - the retained set is bounded: the least recently updated series go first", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const n = limits.fanoutRetainedMax + limits.fanoutRetainedSlack + 1;
    for (let i = 0; i < n; i++) {
      if (i === n - 1) f.publish("windows", "10s", "s0", win("s0", 0), 0); // s0 updated again: among the most recent
      f.publish("windows", "10s", `s${i}`, win(`s${i}`, i), 0);
    }
    const a = client();
    f.handleOp(f.add(a.c), JSON.stringify({ op: "subscribe", topics: ["windows:10s:*"] }));
    f.flush(1000);
    const got = a.sent.slice(1).map((m) => m.series);
    expect(got.length).toBe(Math.min(limits.fanoutRetainedMax, limits.wsPendingPerClientMax));
    // s1 … s2001 were the least recently updated: evicted in one go, down to fanoutRetainedMax.
    expect(got.slice(0, 2)).toEqual(["s0", `s${limits.fanoutRetainedSlack + 2}`]);
  });
});

describe("fanout - batched frames (opt-in)", () => {
  test("fanout - with batch on, one flush is one frame holding an array; off again, one frame each", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const frames: string[] = [];
    const id = f.add({ send: (t) => void frames.push(t), close: () => {}, bufferedAmount: () => 0 });
    f.handleOp(id, JSON.stringify({ op: "subscribe", topics: ["windows:10s:*"] }));
    f.handleOp(id, JSON.stringify({ op: "throttle", ms: 100, batch: true }));
    f.publish("windows", "10s", "a", win("a", 1), 0);
    f.publish("windows", "10s", "b", win("b", 2), 0);
    f.flush(1000);
    expect(frames.slice(1).map((t) => JSON.parse(t))).toEqual([[win("a", 1), win("b", 2)]]);
    f.handleOp(id, JSON.stringify({ op: "throttle", ms: 100, batch: false }));
    f.publish("windows", "10s", "a", win("a", 3), 0);
    f.publish("windows", "10s", "b", win("b", 4), 0);
    f.flush(2000);
    expect(frames.slice(2).map((t) => JSON.parse(t))).toEqual([win("a", 3), win("b", 4)]);
    f.handleOp(id, JSON.stringify({ op: "throttle", ms: 100, batch: "yes" }));
    expect(JSON.parse(frames[frames.length - 1])).toEqual({ type: "error", error: "batch: must be a boolean" });
  });
});

describe("fanout - a socket that drops what it is given", () => {
  test("fanout - a client whose send answers false (dropped at the buffer bound) is closed with 1013 at once; others still get theirs", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const delivered: number[] = [];
    f.onDelivered = (ms) => void delivered.push(ms);
    let accepts = 1; // the hello, then nothing
    const sent: string[] = [];
    let closed: [number, string] | undefined;
    const full: LiveClient = { send: (t) => accepts-- > 0 && sent.push(t) > 0, close: (code, reason) => { closed = [code, reason]; }, bufferedAmount: () => 0 };
    const ok = client();
    for (const c of [full, ok.c]) f.handleOp(f.add(c), JSON.stringify({ op: "subscribe", topics: ["windows:10s:*"] }));
    f.publish("windows", "10s", "a", win("a", 1), 500);
    f.publish("windows", "10s", "b", win("b", 2), 500);
    f.flush(1000);
    expect(closed).toEqual([1013, "client too slow: send buffer over limit"]);
    expect(sent.length).toBe(1); // the hello only
    expect(f.closed).toEqual({ slow: 1, full: 0 });
    expect(f.size).toBe(1);
    expect(ok.sent.slice(1)).toEqual([win("a", 1), win("b", 2)]);
    expect(delivered).toEqual([500, 500]); // the healthy client's two; nothing counted for the dropped ones
  });
});

describe("fanout - one frame for many clients", () => {
  test("fanout - clients flushed together with the same messages share one built frame; others get their own, each exact", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const framesOf = (topics: string[]) => {
      const frames: string[] = [];
      const id = f.add({ send: (t) => void frames.push(t), close: () => {}, bufferedAmount: () => 0 });
      f.handleOp(id, JSON.stringify({ op: "subscribe", topics }));
      f.handleOp(id, JSON.stringify({ op: "throttle", ms: 100, batch: true }));
      return frames;
    };
    const same = [framesOf(["windows:10s:*"]), framesOf(["windows:10s:*"]), framesOf(["windows:10s:*"])];
    const onlyA = framesOf(["windows:10s:a"]);
    f.publish("windows", "10s", "a", win("a", 1), 0);
    f.publish("windows", "10s", "b", win("b", 2), 0);
    f.flush(1000);
    expect(f.batchFramesBuilt).toBe(2); // one for the three alike, one for onlyA
    for (const frames of same) expect(frames.slice(1).map((t) => JSON.parse(t))).toEqual([[win("a", 1), win("b", 2)]]);
    expect(onlyA.slice(1).map((t) => JSON.parse(t))).toEqual([[win("a", 1)]]);
    // Conflation may leave one client other messages than its neighbour: identity, not position, decides reuse.
    f.publish("windows", "10s", "a", win("a", 3), 0);
    f.flush(1100);
    f.publish("windows", "10s", "b", win("b", 4), 0);
    f.flush(1200);
    expect(same[0].slice(2).map((t) => JSON.parse(t))).toEqual([[win("a", 3)], [win("b", 4)]]);
    expect(onlyA.slice(2).map((t) => JSON.parse(t))).toEqual([[win("a", 3)]]);
    expect(f.batchFramesBuilt).toBe(2 + 1 + 1); // a (shared by all four), then b (shared by the three)
  });
});

describe("fanout - subscription index", () => {
  test("fanout - exact keys, globs and everything reach the right clients once; unsubscribe and remove stop them", () => {
    const f = new Fanout({ windows: ["10s"], version: "v" });
    const exact = client();
    const glob = client();
    const both = client();
    const ids = [exact, glob, both].map((c) => f.add(c.c));
    f.handleOp(ids[0], JSON.stringify({ op: "subscribe", topics: ['windows:10s:cpu{h="a"}'] }));
    f.handleOp(ids[1], JSON.stringify({ op: "subscribe", topics: ["windows:10s:cpu*"] }));
    f.handleOp(ids[2], JSON.stringify({ op: "subscribe", topics: ['windows:10s:cpu{h="a"}', "windows:10s:*"] }));
    f.publish("windows", "10s", 'cpu{h="a"}', win('cpu{h="a"}', 1), 0);
    f.publish("windows", "10s", 'cpu{h="b"}', win('cpu{h="b"}', 2), 0);
    f.publish("windows", "10s", "mem", win("mem", 3), 0);
    f.flush(1000);
    expect(exact.sent.slice(1).map((m) => m.avg)).toEqual([1]);
    expect(glob.sent.slice(1).map((m) => m.avg)).toEqual([1, 2]);
    expect(both.sent.slice(1).map((m) => m.avg)).toEqual([1, 2, 3]);
    f.handleOp(ids[2], JSON.stringify({ op: "unsubscribe", topics: ["windows:10s:*"] }));
    f.remove(ids[1]);
    f.publish("windows", "10s", "mem", win("mem", 4), 0);
    f.publish("windows", "10s", 'cpu{h="a"}', win('cpu{h="a"}', 5), 0, "again");
    f.flush(2000);
    expect(glob.sent.length).toBe(3);
    expect(both.sent.slice(4).map((m) => m.avg)).toEqual([5]);
    expect(exact.sent.slice(2).map((m) => m.avg)).toEqual([5]);
  });
});
