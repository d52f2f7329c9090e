/**
 * What the de-duplication index costs, in-process: writing a base of the
 * ids held (main-thread part, then the asynchronous file write) and a
 * second's delta, and at start-up reading the file and putting its ids back
 * into a set. Ids as weir's ingest takes them (a 10-minute horizon).
 *
 *   bun bench/dedupe-index.ts            # 1,000,000 ids (limits.dedupeIdsMax), deltas of 6,000
 *   bun bench/dedupe-index.ts 360000
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DedupeSet } from "../src/actors/dedupe.ts";
import { DedupeIndexWriter, readDedupeIndex } from "../src/storage/dedupe-index.ts";

const ids = Number(process.argv[2] ?? 1_000_000);
const deltaIds = 6_000;
const rounds = 4;
const horizonMs = 600_000;

const dir = mkdtempSync(join(tmpdir(), "issue19-dedupe-index-"));
try {
  const set = new DedupeSet(horizonMs);
  const now = Date.now();
  for (let i = 0; i < ids; i++) set.add(`evt-${i}-0123456789`, now - horizonMs / 2 + (i * (horizonMs / 2)) / ids);
  for (let k = 0; k < rounds; k++) {
    const w = new DedupeIndexWriter(dir, set);
    let t = performance.now();
    const base = w.write({ mark: set.mark(), pos: 1_000 * (k + 1) })!;
    const mainMs = performance.now() - t;
    await w.settled();
    const writtenMs = performance.now() - t;
    for (let i = 0; i < deltaIds; i++) set.add(`new-${k}-${i}`, now + k);
    t = performance.now();
    w.write({ mark: set.mark(), pos: 1_000 * (k + 1) + 500 });
    const deltaMs = performance.now() - t;
    w.close();
    t = performance.now();
    const r = readDedupeIndex(dir, Number.MAX_SAFE_INTEGER);
    const readMs = performance.now() - t;
    t = performance.now();
    const back = new DedupeSet(horizonMs);
    for (const c of r.chunks) back.addEntries(c, now - horizonMs);
    const loadMs = performance.now() - t;
    console.log(
      `round ${k + 1}: base of ${base.entries.toLocaleString("en")} ids (${(base.bytes / 2 ** 20).toFixed(1)} MiB): main thread ${mainMs.toFixed(1)} ms, on disk after ${writtenMs.toFixed(1)} ms; ` +
      `delta of ${deltaIds.toLocaleString("en")}: ${deltaMs.toFixed(2)} ms; start-up: read ${readMs.toFixed(1)} ms, ${back.size.toLocaleString("en")} ids put back ${loadMs.toFixed(1)} ms`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
