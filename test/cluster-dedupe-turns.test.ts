/**
 * Cluster mode: a process that takes a partition back from a checkpoint
 * older than the shares it took in an earlier turn takes those shares again.
 * Its de-duplication keys are scoped to the partition's turn, so the ids it
 * remembered before the partition left it do not make it skip them (they
 * were lost events before the scope).
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { Engine } from "../src/engine/engine.ts";
import { parseEvents } from "../src/actors/ingest-parse.ts";
import { silentLog } from "../src/runtime/log.ts";
import { seriesIn } from "./helpers/weir.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function clusterEngine(): Promise<Engine> {
  const dir = mkdtempSync(join(tmpdir(), "weir-turns-"));
  // The engine alone: no NATS connection is made below the cluster layer.
  const cfg = loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: dir, WEIR_PARTITIONS: "2", WEIR_NATS_URL: "nats://127.0.0.1:1", WEIR_NATS_CLUSTER: "1" });
  const engine = await Engine.start(cfg, silentLog);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => engine.stop());
  return engine;
}

test("a share and an event id taken in an earlier turn of the partition are taken again after it is reset, and stay duplicates within one turn", async () => {
  const engine = await clusterEngine();
  const name = seriesIn(1, "turns.");
  const ts = Date.now();
  const share = (id: string) => parseEvents([{ name, value: 5, ts, id }], ts, engine.cfg);
  const take = async (originKey: string, id: string) => {
    const out = await engine.ingestParsed(share(id), { keys: [engine.dedupeKey(1, originKey)] });
    await out.durable;
    return { known: out.known, accepted: out.accepted, duplicates: out.duplicates };
  };

  await engine.resetPartition(1, null); // first turn, from an empty checkpoint
  expect(await take("WEIR_PARTS:7", "e1")).toEqual({ known: false, accepted: 1, duplicates: 0 });
  expect(await take("WEIR_PARTS:7", "e1")).toEqual({ known: true, accepted: 0, duplicates: 0 }); // the same share again
  expect(await take("WEIR_PARTS:8", "e1")).toEqual({ known: false, accepted: 1, duplicates: 1 }); // the same event in another share

  await engine.resetPartition(1, null); // lost, then taken back from the same empty checkpoint
  expect(await take("WEIR_PARTS:7", "e1")).toEqual({ known: false, accepted: 1, duplicates: 0 });
  expect(await take("WEIR_PARTS:8", "e1")).toEqual({ known: false, accepted: 1, duplicates: 1 });
});

test("the other partition's turn is its own: resetting one leaves the ids of the other known", async () => {
  const engine = await clusterEngine();
  const name = seriesIn(0, "turns.");
  const ts = Date.now();
  const out = await engine.ingestParsed(parseEvents([{ name, value: 1, ts, id: "z" }], ts, engine.cfg), { keys: [engine.dedupeKey(0, "WEIR_PARTS:1")] });
  await out.durable;
  await engine.resetPartition(1, null);
  const again = await engine.ingestParsed(parseEvents([{ name, value: 1, ts, id: "z" }], ts, engine.cfg), { keys: [engine.dedupeKey(0, "WEIR_PARTS:2")] });
  await again.durable;
  expect({ known: again.known, accepted: again.accepted, duplicates: again.duplicates }).toEqual({ known: false, accepted: 1, duplicates: 1 });
});
