/**
 * WEIR_DURABILITY=durable with group commit (API.md "Ingest", README
 * "Guarantees"): a request is answered only after an fsync covers its raw-log
 * record; the requests written in one turn of the event loop share that
 * fsync; a failed fsync refuses all of them and keeps nothing of them, so
 * their retry counts once.
 */
import { describe, expect, test } from "bun:test";
import { OverloadedError } from "../src/engine/engine.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, seriesIn, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const env = { WEIR_DURABILITY: "durable", WEIR_LATENESS: "60s", WEIR_FAILPOINTS: "1" };

/** The stored 10 s window of `name` starting at `start`, once the watermark has closed it. */
async function closedWindow(w: TestWeir, name: string, start: number): Promise<Record<string, number>> {
  expect((await postEvents(w.url, JSON.stringify([{ name, value: 0, ts: start + 80_000 }]))).status).toBe(202);
  let rows: Array<Record<string, number>> = [];
  await waitFor(async () => {
    const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(name)}&window=10s&from=${start}&to=${start + 1}`);
    return (rows = (await res.json()).windows).length === 1;
  }, 10_000, `the window of ${name}`);
  return rows[0];
}

describe("durability - durable profile, group commit", () => {
  test("durable - requests written in one turn share one fsync, and none is answered before it", async () => {
    const w = await startTestWeir(env);
    try {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const name = seriesIn(0, "grp.a");
      const syncsBefore = w.engine.rawLogSyncs;
      const outs = [1, 2, 3, 4, 5].map((v) => w.engine.ingestEvents([{ name, value: v, ts: base + v, id: `g-${v}` }]));
      let settled = 0;
      for (const o of outs) void o.durable?.then(() => settled++);
      await Promise.resolve();
      expect({ promises: outs.filter((o) => o.durable !== undefined).length, settled, syncs: w.engine.rawLogSyncs - syncsBefore })
        .toEqual({ promises: 5, settled: 0, syncs: 0 });
      await Promise.all(outs.map((o) => o.durable));
      expect({ settled, syncs: w.engine.rawLogSyncs - syncsBefore }).toEqual({ settled: 5, syncs: 1 });
      // A re-sent id while its first copy waits for the group is answered with the group, and counted once.
      const first = w.engine.ingestEvents([{ name, value: 6, ts: base + 6, id: "g-6" }]);
      const again = w.engine.ingestEvents([{ name, value: 6, ts: base + 6, id: "g-6" }]);
      expect([first.durable !== undefined, again.durable !== undefined, again.duplicates]).toEqual([true, true, 1]);
      await Promise.all([first.durable, again.durable]);
      expect(await closedWindow(w, name, base)).toMatchObject({ count: 6, sum: 21, min: 1, max: 6 });
      expect(await (await fetch(`${w.url}/metrics`)).text()).toMatch(/\nweir_raw_log_fsyncs_total \d+\n/);
    } finally {
      await w.stop();
    }
  }, 30_000);

  test("fast - the default profile never fsyncs the raw log and answers at once", async () => {
    const w = await startTestWeir({ WEIR_LATENESS: "60s" });
    try {
      const name = seriesIn(0, "grp.fast");
      const out = w.engine.ingestEvents([{ name, value: 1 }]);
      expect([out.accepted, out.durable]).toEqual([1, undefined]);
      expect((await postEvents(w.url, JSON.stringify([{ name, value: 2 }]))).status).toBe(202);
      expect(w.engine.rawLogSyncs).toBe(0);
    } finally {
      await w.stop();
    }
  }, 30_000);

  test("durable - a failed fsync refuses the whole group (503 over HTTP), keeps nothing of it, and the retry counts once", async () => {
    const w = await startTestWeir(env);
    try {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const name = seriesIn(1, "grp.b");
      const ok = w.engine.ingestEvents([{ name, value: 100, ts: base, id: "f-0" }]);
      await ok.durable;
      const endBefore = w.engine.rawLogEnd;
      const batch = (v: number) => [{ name, value: v, ts: base + v, id: `f-${v}` }];
      w.engine.failNextFsync();
      const outs = [1, 2, 3].map((v) => w.engine.ingestEvents(batch(v)));
      const verdicts = await Promise.all(outs.map((o) => o.durable!.then(() => "202", (e: Error) => e)));
      for (const v of verdicts) {
        expect(v).toBeInstanceOf(OverloadedError);
        expect([(v as OverloadedError).status, (v as OverloadedError).retryAfterSeconds]).toEqual([503, 5]);
        expect((v as Error).message).toMatch(/^raw log not durable: raw log append failed at position \d+ in raw-\d+\.log: .*EIO/);
      }
      expect(w.engine.rawLogEnd).toBe(endBefore); // cut back off the log
      // The same ids again: not taken for duplicates, so counted, once.
      const retry = [1, 2, 3].map((v) => w.engine.ingestEvents(batch(v)));
      expect(retry.map((o) => o.duplicates)).toEqual([0, 0, 0]);
      await Promise.all(retry.map((o) => o.durable));
      // Over HTTP a failed group is a 503 with Retry-After, and nothing of it is listed or counted.
      w.engine.failNextFsync();
      const refused = await postEvents(w.url, JSON.stringify(batch(50)));
      expect([refused.status, refused.headers.get("retry-after")]).toEqual([503, "5"]);
      expect(refused.body.error).toMatch(/^overloaded: raw log not durable: .*; nothing of this request was accepted$/);
      expect(await closedWindow(w, name, base)).toMatchObject({ count: 4, sum: 106, min: 1, max: 100 });
    } finally {
      await w.stop();
    }
  }, 30_000);
});
