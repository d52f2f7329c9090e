/**
 * The /ws/ingest session's logic without a socket: acks in frame order
 * whatever order durability settles in, frames taken one after the other,
 * reading paused at the in-flight bound and resumed by the next ack, the
 * socket closed with 1013 past the queued bound, errors acked.
 */
import { describe, expect, test } from "bun:test";
import type { EngineOutcome } from "../src/engine/ports.ts";
import { WsIngestSession } from "../src/http/ws-ingest-session.ts";
import { waitFor } from "./helpers/wait.ts";

/** A deferred promise: settle it from the test. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function harness(bounds = { framesInFlightMax: 2, framesQueuedMax: 3 }) {
  const sent: unknown[] = [];
  const calls: string[] = [];
  const durables: Array<ReturnType<typeof deferred<void>>> = [];
  let failNext: unknown = null;
  const session = new WsIngestSession({
    ingest: async (bytes, format) => {
      calls.push(`${format}:${new TextDecoder().decode(bytes)}`);
      if (failNext !== null) { const e = failNext; failNext = null; throw e; }
      const d = deferred<void>();
      durables.push(d);
      return { accepted: 1, duplicates: 0, rejected: 0, errors: [], reasons: {}, rejects: [], durable: d.promise } as EngineOutcome;
    },
    send: (text) => sent.push(JSON.parse(text)),
    pause: () => calls.push("pause"),
    resume: () => calls.push("resume"),
    close: (code, reason) => calls.push(`close ${code} ${reason}`),
    describe: (e) => ({ error: (e as Error).message, retryAfter: 1 }),
  }, bounds);
  return { session, sent, calls, durables, fail: (e: unknown) => (failNext = e) };
}

describe("ws ingest session", () => {
  test("ws ingest session - acks go out in frame order when durability settles out of order", async () => {
    const h = harness({ framesInFlightMax: 10, framesQueuedMax: 10 });
    h.session.frame("1");
    h.session.frame("2");
    await waitFor(() => h.durables.length === 2, 1000, "both frames taken");
    h.durables[1].resolve();
    await new Promise((r) => setImmediate(r)); // one turn of the loop: frame 2 is durable, frame 1 is not, so nothing may be sent
    expect(h.sent).toEqual([]);
    h.durables[0].resolve();
    await waitFor(() => h.sent.length === 2, 1000, "two acks");
    expect(h.sent).toEqual([
      { type: "ack", seq: 1, accepted: 1, rejected: 0, errors: [] },
      { type: "ack", seq: 2, accepted: 1, rejected: 0, errors: [] },
    ]);
    expect(h.calls).toEqual(["json:1", "json:2"]);
  });

  test("ws ingest session - pauses reading at the in-flight bound and resumes on the next ack", async () => {
    const h = harness();
    h.session.frame("1");
    expect(h.calls).toEqual([]);
    h.session.frame("2");
    expect(h.calls).toEqual(["pause"]);
    await waitFor(() => h.durables.length === 2, 1000, "both frames taken");
    h.durables[0].resolve();
    await waitFor(() => h.sent.length === 1, 1000, "the first ack");
    expect(h.calls).toEqual(["pause", "json:1", "json:2", "resume"]);
  });

  test("ws ingest session - a client that writes past the queued bound is closed with 1013", () => {
    const h = harness();
    for (const f of ["1", "2", "3", "4", "5"]) h.session.frame(f);
    expect(h.calls).toEqual(["pause", "close 1013 more than 3 frames awaiting their ack: wait for acks before sending"]);
  });

  test("ws ingest session - an overloaded engine acks the frame with the error and retryAfter, and the next frame goes on", async () => {
    const h = harness({ framesInFlightMax: 10, framesQueuedMax: 10 });
    h.fail(new Error("overloaded: partition rings full"));
    h.session.frame(new Uint8Array([0x90]));
    h.session.frame("2");
    await waitFor(() => h.durables.length === 1, 1000, "the second frame taken");
    h.durables[0].resolve();
    await waitFor(() => h.sent.length === 2, 1000, "two acks");
    expect(h.sent).toEqual([
      { type: "ack", seq: 1, accepted: 0, rejected: 0, errors: [], error: "overloaded: partition rings full", retryAfter: 1 },
      { type: "ack", seq: 2, accepted: 1, rejected: 0, errors: [] },
    ]);
    expect(h.calls.map((c) => c.slice(0, c.indexOf(":")))).toEqual(["msgpack", "json"]);
  });
});
