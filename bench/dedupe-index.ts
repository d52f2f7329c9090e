/**
 * What the de-duplication index costs, in-process: writing a base of the
 * ids held (its ids copied on the main thread, then its table built in
 * slices and the file written asynchronously: the longest slice is what a
 * request can wait; one writer, so from the second base on its buffer is
 * reused) and a second's delta, and at start-up reading the file,
 * attaching its base in place and putting the delta's ids back one by one;
 * then the cost of a lookup that reaches the base. Ids as weir's ingest
 * takes them (a 10-minute horizon).
 *
 *   bun bench/dedupe-index.ts            # 1,000,000 ids (limits.dedupeIdsMax), deltas of 6,000
 *   bun bench/dedupe-index.ts 360000
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DedupeSet } from "../src/actors/dedupe.ts";
import { limits } from "../src/runtime/limits.ts";
import { DedupeIndexWriter, readDedupeIndex } from "../src/storage/dedupe-index.ts";

const ids = Number(process.argv[2] ?? 1_000_000);
const deltaIds = 6_000;
const rounds = 4;
const horizonMs = 600_000;
const lookups = 100_000;

/** The longest gap between turns of the event loop while `p` runs (ms): how long a request could wait. */
async function longestTurn(p: Promise<void>): Promise<number> {
  let longest = 0;
  let last = performance.now();
  let done = false;
  const spin = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (!done) setImmediate(spin);
  };
  setImmediate(spin);
  await p;
  done = true;
  return longest;
}

const dir = mkdtempSync(join(tmpdir(), "issue19-dedupe-index-"));
try {
  const set = new DedupeSet(horizonMs);
  const now = Date.now();
  for (let i = 0; i < ids; i++) set.add(`evt-${i}-0123456789`, now - horizonMs / 2 + (i * (horizonMs / 2)) / ids);
  let clockMs = 0;
  const w = new DedupeIndexWriter(dir, set, { nowMs: () => clockMs }); // one writer, as the engine's: from the 2nd base on, its buffer is reused
  const lookup = (d: DedupeSet, k: number) => {
    const t = performance.now();
    let found = 0;
    for (let i = 0; i < lookups; i++) if (d.has(`evt-${(i * 7919) % ids}-0123456789`, now + k)) found++;
    return { ns: ((performance.now() - t) * 1e6) / lookups, found };
  };
  for (let k = 0; k < rounds; k++) {
    clockMs += limits.dedupeIndexBaseMs; // each round's first write is a base
    let t = performance.now();
    const base = w.write({ mark: set.mark(), pos: 1_000 * (k + 1) })!;
    if (base.kind !== "base") throw new Error("the round's first write was not a base");
    const mainMs = performance.now() - t;
    const turnMs = await longestTurn(w.settled());
    const writtenMs = performance.now() - t;
    for (let i = 0; i < deltaIds; i++) set.add(`new-${k}-${i}`, now + k);
    t = performance.now();
    w.write({ mark: set.mark(), pos: 1_000 * (k + 1) + 500 });
    const deltaMs = performance.now() - t;
    t = performance.now();
    const r = readDedupeIndex(dir, Number.MAX_SAFE_INTEGER);
    const readMs = performance.now() - t;
    t = performance.now();
    const back = new DedupeSet(horizonMs);
    if (r.base !== null) back.attachBase(r.base, now - horizonMs);
    const attachMs = performance.now() - t;
    t = performance.now();
    for (const c of r.chunks) back.addEntries(c, now - horizonMs);
    const deltaLoadMs = performance.now() - t;
    const inBase = lookup(back, k);
    const inSet = lookup(set, k);
    console.log(
      `round ${k + 1}: base of ${base.entries.toLocaleString("en")} ids (${(base.bytes / 2 ** 20).toFixed(1)} MiB): main thread ${mainMs.toFixed(1)} ms, ` +
      `longest turn while built and written ${turnMs.toFixed(1)} ms, on disk after ${writtenMs.toFixed(1)} ms; delta of ${deltaIds.toLocaleString("en")}: ${deltaMs.toFixed(2)} ms; ` +
      `start-up: read ${readMs.toFixed(1)} ms, base attached ${attachMs.toFixed(2)} ms, delta put back ${deltaLoadMs.toFixed(1)} ms (${back.size.toLocaleString("en")} ids); ` +
      `a lookup in the base ${inBase.ns.toFixed(0)} ns, in the live set ${inSet.ns.toFixed(0)} ns (${inBase.found.toLocaleString("en")} and ${inSet.found.toLocaleString("en")} of ${lookups.toLocaleString("en")} found)`,
    );
  }
  w.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
