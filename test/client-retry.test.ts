import { afterEach, describe, expect, test } from "bun:test";
import { clientDefaults, createClient, type ClientEvent } from "../src/client/emit.ts";
import { isRetryableStatus, retryAfterMs, retryDelayMs } from "../src/client/retry.ts";
import { limits } from "../src/runtime/limits.ts";
import { waitFor } from "./helpers/wait.ts";
import { gate, never, reply, startReceiver, type Receiver } from "./helpers/receiver.ts";

const accepted = (n: number) => reply(202, { accepted: n, rejected: 0, errors: [] });
const eventsOf = (body: string) => JSON.parse(body) as ClientEvent[];

let receivers: Receiver[] = [];
function receiver(respond: Parameters<typeof startReceiver>[0]): Receiver {
  const r = startReceiver(respond);
  receivers.push(r);
  return r;
}
afterEach(async () => {
  await Promise.all(receivers.map((r) => r.stop()));
  receivers = [];
});

describe("client - retry rules", () => {
  test("client - retried statuses: 408, 429 and 5xx; never 400, 401, 403, 404, 413, 415", () => {
    for (const s of [408, 429, 500, 502, 503, 504]) expect(isRetryableStatus(s)).toBe(true);
    for (const s of [200, 202, 301, 400, 401, 403, 404, 413, 415, 422]) expect(isRetryableStatus(s)).toBe(false);
  });

  test("client - Retry-After in seconds or as a date, cut to the maximum; unreadable is null", () => {
    const now = Date.parse("2025-11-22T10:00:00Z");
    expect(retryAfterMs("2", now, 60_000)).toBe(2000);
    expect(retryAfterMs(" 0 ", now, 60_000)).toBe(0);
    expect(retryAfterMs("3600", now, 60_000)).toBe(60_000);
    expect(retryAfterMs("Sat, 22 Nov 2025 10:00:05 GMT", now, 60_000)).toBe(5000);
    expect(retryAfterMs("Sat, 22 Nov 2025 09:00:00 GMT", now, 60_000)).toBe(0);
    expect(retryAfterMs(null, now, 60_000)).toBeNull();
    expect(retryAfterMs("soon", now, 60_000)).toBeNull();
    expect(retryAfterMs("-1", now, 60_000)).toBeNull();
  });

  test("client - back-off doubles from the base with equal jitter up to the cap; Retry-After wins with up to 10 % more", () => {
    const o = { retryAfterMs: null, backoffBaseMs: 100, backoffMaxMs: 1000 };
    expect([0, 1, 2, 3, 4, 40].map((attempt) => retryDelayMs({ ...o, attempt, random: () => 0 }))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([0, 1, 2, 3, 4, 40].map((attempt) => retryDelayMs({ ...o, attempt, random: () => 0.999999 }))).toEqual([100, 200, 400, 800, 1000, 1000].map((v) => expect.closeTo(v, 2) as unknown as number));
    expect(retryDelayMs({ ...o, attempt: 5, retryAfterMs: 2000, random: () => 0 })).toBe(2000);
    expect(retryDelayMs({ ...o, attempt: 5, retryAfterMs: 2000, random: () => 0.5 })).toBe(2100);
  });

  test("client - its defaults fit weir's own bounds", () => {
    expect(clientDefaults.eventsPerRequestMax).toBe(limits.eventsPerRequestMax);
    expect(clientDefaults.batchEventsMax).toBeLessThanOrEqual(limits.eventsPerRequestMax);
    expect(clientDefaults.batchEventsMax).toBeLessThanOrEqual(clientDefaults.bufferEventsMax);
    expect(clientDefaults.backoffBaseMs).toBeLessThanOrEqual(clientDefaults.backoffMaxMs);
    // A re-sent batch must come back within WEIR_DEDUPE_WINDOW's default (10 min) to count once.
    let backoffMs = 0;
    for (let a = 0; a < clientDefaults.retriesMax; a++) backoffMs += Math.max(clientDefaults.retryAfterMsMax, Math.min(clientDefaults.backoffMaxMs, clientDefaults.backoffBaseMs * 2 ** a));
    expect(backoffMs * 1.1 + (clientDefaults.retriesMax + 1) * clientDefaults.requestTimeoutMs).toBeLessThan(10 * 60_000);
    // The generated id: 16 hex digits, a dash and a base-36 counter.
    expect(16 + 1 + Number.MAX_SAFE_INTEGER.toString(36).length).toBeLessThanOrEqual(limits.idCharsMax);
  });

  test("client - bad options throw at once", () => {
    expect(() => createClient({ url: "http://x", batchEventsMax: 0 })).toThrow("createClient: batchEventsMax: 1–100000");
    expect(() => createClient({ url: "http://x", batchEventsMax: 10, bufferEventsMax: 5 })).toThrow("bufferEventsMax");
    expect(() => createClient({ url: "not a url" })).toThrow();
  });
});

describe("client - against a receiver", () => {
  test("client - 503 + Retry-After is retried after the time asked, with the same bytes and ids", async () => {
    const r = receiver((_req, i) => (i < 2 ? reply(503, { error: "overloaded" }, { "Retry-After": "1" }) : accepted(3)));
    const c = createClient({ url: r.url, token: "tok-12345678", flushOnExit: false });
    c.emit("a.b", 1);
    c.emit("a.b", 2, { k: "v" });
    c.emit("a.c");
    expect(await c.flush()).toEqual({ accepted: 3, rejected: 0, failed: 0, buffered: 0 });
    expect(r.received).toHaveLength(3);
    expect(new Set(r.received.map((q) => q.body)).size).toBe(1);
    expect(r.received[0].path).toBe("/api/v1/events");
    expect(r.received[0].headers.get("authorization")).toBe("Bearer tok-12345678");
    expect(r.received[0].headers.get("content-type")).toBe("application/json");
    for (let i = 1; i < 3; i++) expect(r.received[i].at - r.received[i - 1].at).toBeGreaterThanOrEqual(990);
    const evs = eventsOf(r.received[0].body);
    expect(evs.map((e) => [e.name, e.value, e.tags])).toEqual([["a.b", 1, undefined], ["a.b", 2, { k: "v" }], ["a.c", undefined, undefined]]);
    expect(c.stats()).toMatchObject({ emitted: 3, accepted: 3, rejected: 0, failed: 0, dropped: 0, requests: 3, retries: 2, buffered: 0, lastError: "HTTP 503: overloaded" });
    await c.close();
  }, 10_000);

  test("client - 400, 401, 403, 413 and 415 are not retried: the batch counts as rejected with the server's words", async () => {
    for (const status of [400, 401, 403, 413, 415]) {
      const r = receiver(() => reply(status, { error: `nope ${status}` }));
      const c = createClient({ url: r.url, flushOnExit: false });
      c.emit("a.b", 1);
      c.emit("a.b", 2);
      expect(await c.flush()).toEqual({ accepted: 0, rejected: 2, failed: 0, buffered: 0 });
      expect(r.received).toHaveLength(1);
      const id = eventsOf(r.received[0].body)[0].id;
      expect(c.stats()).toMatchObject({ rejected: 2, retries: 0, requests: 1, lastError: `HTTP ${status}: nope ${status}` });
      expect(c.stats().rejections).toEqual([{ status, error: `nope ${status}`, events: 2, id, name: "a.b" }]);
      await c.close();
    }
  });

  test("client - a 400 listing each event's error keeps each, by event id", async () => {
    const r = receiver(() => reply(400, { error: "no event valid", errors: [{ index: 0, error: "name: bad" }, { index: 1, error: "value: bad" }] }));
    const c = createClient({ url: r.url, flushOnExit: false });
    c.emit("x", 1, undefined, { id: "e-1" });
    c.emit("y", 2, undefined, { id: "e-2" });
    await c.flush();
    expect(c.stats().rejections).toEqual([
      { status: 400, error: "name: bad", events: 1, id: "e-1", name: "x" },
      { status: 400, error: "value: bad", events: 1, id: "e-2", name: "y" },
    ]);
    await c.close();
  });

  test("client - an event that cannot be JSON is left out and counted as rejected; its batch still goes", async () => {
    const r = receiver((req) => accepted(eventsOf(req.body).length));
    const c = createClient({ url: r.url, flushOnExit: false });
    c.emit("ok", 1);
    c.emit("big", 2, undefined, { id: "b-1", props: { n: 10n } });
    expect(await c.flush()).toEqual({ accepted: 1, rejected: 1, failed: 0, buffered: 0 });
    expect(eventsOf(r.received[0].body).map((e) => e.name)).toEqual(["ok"]);
    expect(c.stats().rejections).toEqual([{ status: 0, error: expect.stringMatching(/^event: cannot be sent as JSON: /), events: 1, id: "b-1", name: "big" }]);
    await c.close();
  });

  test("client - a never-answering server is bounded by the request timeout, then the batch counts as failed", async () => {
    const r = receiver(() => never());
    const c = createClient({ url: r.url, requestTimeoutMs: 200, retriesMax: 1, flushOnExit: false });
    c.emit("a.b");
    c.emit("a.b");
    const t0 = performance.now();
    expect(await c.flush()).toEqual({ accepted: 0, rejected: 0, failed: 2, buffered: 0 });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(r.received).toHaveLength(2);
    expect(c.stats()).toMatchObject({ failed: 2, requests: 2, retries: 1, lastError: "no answer within 200 ms" });
    await c.close();
  });

  test("client - a refused connection is retried, then failed, with the error kept", async () => {
    const r = receiver(() => accepted(1));
    const url = r.url;
    await r.stop();
    const c = createClient({ url, retriesMax: 2, flushOnExit: false });
    c.emit("a.b");
    expect(await c.flush()).toMatchObject({ failed: 1 });
    expect(c.stats()).toMatchObject({ requests: 3, retries: 2 });
    expect(c.stats().lastError).toStartWith("network: ");
    await c.close();
  });

  test("client - a full buffer: emit returns false at once and counts the drop; nothing waiting is lost", async () => {
    const g = gate();
    const r = receiver(async (req) => {
      await g.promise;
      return accepted(eventsOf(req.body).length);
    });
    const c = createClient({ url: r.url, batchEventsMax: 4, bufferEventsMax: 6, flushOnExit: false });
    for (let i = 0; i < 4; i++) expect(c.emit("a.b", i)).toBe(true);
    await waitFor(() => r.received.length === 1, 2000, "the first batch in flight");
    expect(c.emit("a.b", 4)).toBe(true);
    expect(c.emit("a.b", 5)).toBe(true);
    const t0 = performance.now();
    expect([c.emit("a.b", 6), c.emit("a.b", 7), c.emit("a.b", 8)]).toEqual([false, false, false]);
    expect(performance.now() - t0).toBeLessThan(50);
    expect(c.stats()).toMatchObject({ emitted: 6, dropped: 3, buffered: 6 });
    g.open();
    expect(await c.flush()).toEqual({ accepted: 6, rejected: 0, failed: 0, buffered: 0 });
    expect(r.received.flatMap((q) => eventsOf(q.body).map((e) => e.value))).toEqual([0, 1, 2, 3, 4, 5]);
    await c.close();
  });

  test("client - batches go out when full, and a partial batch within flushIntervalMs", async () => {
    const r = receiver((req) => accepted(eventsOf(req.body).length));
    const bySize = createClient({ url: r.url, batchEventsMax: 4, flushIntervalMs: 60_000, flushOnExit: false });
    for (let i = 0; i < 10; i++) bySize.emit("size", i);
    await waitFor(() => bySize.stats().accepted === 8, 2000, "two full batches answered");
    expect(r.received.map((q) => eventsOf(q.body).length)).toEqual([4, 4]);
    expect(bySize.stats().buffered).toBe(2);
    expect(await bySize.flush()).toEqual({ accepted: 2, rejected: 0, failed: 0, buffered: 0 });
    expect(r.received.map((q) => eventsOf(q.body).length)).toEqual([4, 4, 2]);

    const byTime = createClient({ url: r.url, batchEventsMax: 100, flushIntervalMs: 50, flushOnExit: false });
    byTime.emit("time", 1);
    byTime.emit("time", 2);
    byTime.emit("time", 3);
    await waitFor(() => byTime.stats().accepted === 3, 2000, "the partial batch sent by the timer");
    expect(eventsOf(r.received[3].body).map((e) => e.value)).toEqual([1, 2, 3]);
    await Promise.all([bySize.close(), byTime.close()]);
  });

  test("client - ids are a random prefix and a counter unless given; ts is the time of emit unless given", async () => {
    const r = receiver((req) => accepted(eventsOf(req.body).length));
    const a = createClient({ url: r.url, flushOnExit: false });
    const b = createClient({ url: r.url, flushOnExit: false });
    const before = Date.now();
    a.emit("x");
    a.emit("x");
    a.emit("x", 1, undefined, { id: "mine", ts: "2025-11-22T10:00:00Z", props: { fw: "2.1" } });
    a.emit("x", 1, undefined, { ts: new Date(1763800000000) });
    b.emit("x");
    const after = Date.now();
    await Promise.all([a.flush(), b.flush()]);
    const [ea, eb] = [eventsOf(r.received[0].body), eventsOf(r.received[1].body)];
    expect(ea[0].id).toMatch(/^[0-9a-f]{16}-0$/);
    expect(ea[1].id).toBe(ea[0].id.replace(/-0$/, "-1"));
    expect(ea[2]).toEqual({ name: "x", value: 1, ts: "2025-11-22T10:00:00Z", id: "mine", props: { fw: "2.1" } });
    expect(ea[3].ts).toBe(1763800000000);
    expect(eb[0].id.slice(0, 16)).not.toBe(ea[0].id.slice(0, 16));
    for (const e of [ea[0], ea[1], eb[0]]) {
      expect(e.ts as number).toBeGreaterThanOrEqual(before);
      expect(e.ts as number).toBeLessThanOrEqual(after);
    }
    await Promise.all([a.close(), b.close()]);
  });

  test("client - close flushes what is buffered; emits after close are dropped and counted", async () => {
    const r = receiver((req) => accepted(eventsOf(req.body).length));
    const c = createClient({ url: r.url, flushIntervalMs: 60_000, flushOnExit: false });
    c.emit("a");
    c.emit("b");
    await c.close();
    expect(r.received.flatMap((q) => eventsOf(q.body).map((e) => e.name))).toEqual(["a", "b"]);
    expect(c.emit("c")).toBe(false);
    expect(c.stats()).toMatchObject({ emitted: 2, accepted: 2, dropped: 1, buffered: 0 });
  });
});
