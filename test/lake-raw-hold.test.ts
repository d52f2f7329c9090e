/**
 * The raw log's retention and the lake, over a real weir: a closed raw-log
 * segment the lake has not compacted yet outlives WEIR_RETENTION_RAW (a lake
 * that lags, say behind a saturating load, must not lose events to the
 * prune), and goes at the first prune after its compaction. The byte budget
 * still applies (unit-tested in rawlog.test.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { checkpointPositions } from "../src/actors/store.ts";
import { openReader } from "../src/storage/db.ts";
import { listSegments } from "../src/storage/rawlog.ts";
import { postEvents, startTestWeir, type TestWeir } from "./helpers/weir.ts";
import { waitFor } from "./helpers/wait.ts";

let w: TestWeir;
const batches = 3;
const perBatch = 50;
const day = 86_400_000;

beforeAll(async () => {
  w = await startTestWeir({ WEIR_RAW_SEGMENT: "1s", WEIR_LAKE_INTERVAL: "1h", WEIR_LAKE_CURATED_INTERVAL: "1h", WEIR_CHECKPOINT_INTERVAL: "100ms" });
  for (let b = 0; b < batches; b++) {
    const t = Date.now();
    const events = Array.from({ length: perBatch }, (_, i) => ({ name: "hold.test", ts: t - 60_000 + i, value: b * perBatch + i, tags: { host: `h${i % 4}` } }));
    expect((await postEvents(w.url, JSON.stringify(events))).status).toBe(202);
    if (b + 1 < batches) await waitFor(() => Date.now() >= t + 1_100, 3_000, "the next raw-log segment's second"); // each batch its own segment
  }
  const rawDir = join(w.dataDir, "raw");
  await waitFor(() => listSegments(rawDir).length === batches, 5_000, `${batches} raw-log segments`);
  const lastStart = listSegments(rawDir).at(-1)!;
  const db = openReader(join(w.dataDir, "weir.db"));
  try {
    // Replay needs nothing before the last segment once both partitions checkpointed at its first record or later.
    await waitFor(() => [...checkpointPositions(db).values()].filter((p) => p >= lastStart).length === 2, 10_000, "both partitions checkpointed at the last segment");
  } finally {
    db.close();
  }
}, 30_000);

afterAll(async () => {
  await w.stop();
});

describe("lake - the raw log's retention waits for the lake", () => {
  test("lake - closed segments not compacted outlive their retention; compacted, they go at the next prune, and SQL still counts every event", async () => {
    const rawDir = join(w.dataDir, "raw");
    const segments = listSegments(rawDir);
    w.engine.pruneRawLog(Date.now() + 30 * day); // every segment is past the 7-day retention then
    expect(listSegments(rawDir)).toEqual(segments); // the lake has compacted none: all held
    await w.lake.flush(); // compacts the two closed ones
    w.engine.pruneRawLog(Date.now() + 30 * day);
    expect(listSegments(rawDir)).toEqual(segments.slice(-1)); // only the open one stays
    const res = await fetch(`${w.url}/api/v1/query`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ sql: "SELECT count(*)::INTEGER AS n, sum(value)::INTEGER AS s FROM events WHERE name = 'hold.test'" }) });
    const n = batches * perBatch;
    expect(await res.json()).toEqual({ columns: ["n", "s"], rows: [[n, (n * (n - 1)) / 2]], truncated: false });
    const metrics = await (await fetch(`${w.url}/metrics`)).text();
    expect(metrics).toContain("\nweir_lake_segments_compacted_total 2\n");
    expect(metrics).toContain("\nweir_lake_segments_lost_total 0\n");
  });
});
