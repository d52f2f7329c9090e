/**
 * Ingest threads (WEIR_INGEST_THREADS): a body parsed on a worker thread
 * gives exactly what parsing it on the main thread gives, for every format
 * and every refusal; the pool is bounded (503 past it, nothing taken); a
 * dying worker fails only the requests it held and is replaced. And weir
 * over HTTP answers the same with threads as without.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { BodyError, type BodyFormat } from "../src/actors/ingest-body.ts";
import { OverloadedError, TooLargeError } from "../src/engine/errors.ts";
import { parseBody } from "../src/ingest/parse-body.ts";
import { ParsePool } from "../src/ingest/parse-pool.ts";
import { limits } from "../src/runtime/limits.ts";
import { silentLog } from "../src/runtime/log.ts";
import { postEvents, startTestWeir } from "./helpers/weir.ts";

const bounds = { maxEventAgeMs: 7 * 86_400_000, maxFutureSkewMs: 300_000 };
const now = 1_700_000_000_000;
const enc = (s: string) => new TextEncoder().encode(s);

const bodies: Array<[string, Uint8Array, BodyFormat]> = [
  ["json array", enc(JSON.stringify([{ name: "a", value: 1, ts: now, tags: { h: "x" }, props: { p: [1, "x"] } }, { name: "9" }, { name: "a", ts: now - 1, tags: { h: "x" }, id: "i" }])), "json"],
  ["json object", enc('{"name":"b"}'), "json"],
  ["ndjson", enc('{"name":"a","ts":1700000000000}\n\n{"name":"c","value":"x"}\n'), "ndjson"],
  ["msgpack", encode([{ name: "m", value: 2.5, ts: now, tags: { k: "v" } }]), "msgpack"],
  ["invalid json", enc("{nope"), "json"],
  ["empty", new Uint8Array(0), "json"],
  ["not UTF-8", new Uint8Array([0x5b, 0xff, 0x5d]), "json"],
  ["too many events", enc(JSON.stringify(Array.from({ length: limits.eventsPerRequestMax + 1 }, () => ({ name: "a" })))), "json"],
];

/** What parsing gives, as comparable data: the events and refusals, or the error's class and message. */
async function outcome(parse: () => unknown): Promise<unknown> {
  try {
    const r = (await parse()) as ReturnType<typeof parseBody>;
    return { n: r.n, ts: [...r.ts.subarray(0, r.n)], value: [...r.value.subarray(0, r.n)], series: [...r.series.subarray(0, r.n)], distinct: r.distinct, ids: r.ids, props: r.props, rejects: r.rejects };
  } catch (e) {
    return { error: (e as Error).constructor.name, message: (e as Error).message };
  }
}

describe("ingest threads", () => {
  const pools: ParsePool[] = [];
  afterAll(() => {
    for (const p of pools) p.close();
  });

  test("ingest threads - a body parsed on a worker equals the same body parsed here, for every format and refusal", async () => {
    const pool = ParsePool.start(2, bounds, silentLog);
    pools.push(pool);
    for (const [what, bytes, format] of bodies) {
      const here = await outcome(() => parseBody(bytes, format, now, bounds));
      const there = await outcome(() => pool.parse(bytes.slice(), format, now));
      expect([what, there]).toEqual([what, here]);
    }
    const errors = await Promise.all([4, 7].map((i) => pool.parse(bodies[i][1].slice(), "json", now).catch((e) => e)));
    expect([errors[0] instanceof BodyError, errors[1] instanceof TooLargeError]).toEqual([true, true]);
  });

  test("ingest threads - the body moves to the thread (not copied); a view into a larger buffer is copied first", async () => {
    const pool = ParsePool.start(1, bounds, silentLog);
    pools.push(pool);
    const own = enc('{"name":"a","props":{"k":1}}');
    const r = await pool.parse(own, "json", now);
    expect([own.byteLength, r.distinct[0].name, r.props]).toEqual([0, "a", [{ k: 1 }]]); // ours was moved
    const big = enc('xx{"name":"b"}yy');
    const r2 = await pool.parse(big.subarray(2, 14), "json", now);
    expect([big.byteLength, r2.distinct[0].name]).toEqual([16, "b"]);
  });

  test("ingest threads - past limits.parseInFlightPerThreadMax bodies waiting, the next is refused (OverloadedError) and the others answered", async () => {
    const pool = ParsePool.start(1, bounds, silentLog);
    pools.push(pool);
    const n = limits.parseInFlightPerThreadMax + 1;
    const all = await Promise.allSettled(Array.from({ length: n }, () => pool.parse(enc('{"name":"a"}'), "json", now)));
    expect(all.map((r) => r.status)).toEqual([...Array(n - 1).fill("fulfilled"), "rejected"]);
    expect((all[n - 1] as PromiseRejectedResult).reason).toBeInstanceOf(OverloadedError);
    expect(pool.inFlight).toBe(0);
    expect((await pool.parse(enc('{"name":"a"}'), "json", now)).n).toBe(1);
  });

  test("ingest threads - a worker that dies fails the bodies it held (OverloadedError) and is replaced", async () => {
    const pool = ParsePool.start(1, bounds, silentLog, new URL("./fixtures/ingest/failing-parse.worker.ts", import.meta.url));
    pools.push(pool);
    expect((await pool.parse(enc('{"name":"a"}'), "json", now)).n).toBe(1);
    const dying = pool.parse(enc("die"), "json", now).catch((e) => e);
    expect(await dying).toBeInstanceOf(OverloadedError);
    expect(((await dying) as Error).message).toBe("ingest thread failed: a programmer error on an ingest thread"); // no source frame
    expect((await pool.parse(enc('{"name":"b"}'), "json", now)).distinct[0].name).toBe("b");
  });

  test("ingest threads - a worker that keeps dying is replaced at most limits.parseThreadRestartsMax times a minute, then every body is refused", async () => {
    const pool = ParsePool.start(1, bounds, silentLog, new URL("./fixtures/ingest/failing-parse.worker.ts", import.meta.url));
    pools.push(pool);
    for (let i = 0; i <= limits.parseThreadRestartsMax; i++) {
      expect(await pool.parse(enc("die"), "json", now).catch((e) => e)).toBeInstanceOf(OverloadedError);
    }
    const refused = await pool.parse(enc('{"name":"a"}'), "json", now).catch((e) => e);
    expect([refused instanceof OverloadedError, (refused as Error).message]).toEqual([true, "ingest threads failed: a programmer error on an ingest thread"]);
  });

  test("ingest threads - weir answers the same over HTTP with WEIR_INGEST_THREADS=2 as with 0", async () => {
    const answers: unknown[][] = [];
    for (const threads of ["0", "2"]) {
      const w = await startTestWeir({ WEIR_INGEST_THREADS: threads });
      try {
        const got: unknown[] = [];
        const ts = Date.now() - 1000;
        const http: Array<[BodyInit, string]> = [
          [JSON.stringify([{ name: "a", value: 1, ts, tags: { h: "x" } }, { name: "9" }, { name: "a", ts, tags: { h: "y" }, id: "i" }]), "application/json"],
          ['{"name":"b"}\n{"name":"c","value":"x"}', "application/x-ndjson"],
          [encode([{ name: "m", value: 2.5, ts, tags: { k: "v" } }]), "application/msgpack"],
          [JSON.stringify([{ name: "a", ts, tags: { h: "x" }, id: "i" }]), "application/json"], // a re-sent id
          ["{nope", "application/json"],
          [new Uint8Array([0x5b, 0xff, 0x5d]), "application/json"],
        ];
        for (const [body, type] of http) {
          const r = await postEvents(w.url, body, type);
          got.push({ status: r.status, body: r.body });
        }
        const series = await (await fetch(`${w.url}/api/v1/series`)).json();
        got.push(series.series.map((s: { key: string }) => s.key).sort());
        answers.push(got);
      } finally {
        await w.stop();
      }
    }
    expect(answers[1]).toEqual(answers[0]);
    expect((answers[0][0] as { status: number }).status).toBe(202);
  });
});
