/**
 * Event validation on the ingest hot path: the hand-written validator
 * against the same contract in zod (the baseline), over the same parsed
 * 1,000-event batches.
 */
import { eventSchema, newValidEvent, validateEvent } from "../src/actors/ingest-validate.ts";

export async function benchIngestValidate(opts: { events?: number } = {}) {
  const events = opts.events ?? 2_000_000;
  const now = Date.now();
  const batch = JSON.parse(JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({
    name: "sensor.temperature", value: i * 0.5, ts: now - i, tags: { device: `dev-${i % 50}`, site: "north" },
  })))) as unknown[];
  const bounds = { maxEventAgeMs: 7 * 86400_000, maxFutureSkewMs: 300_000 };
  const out = newValidEvent();
  let ok = 0;
  let t = performance.now();
  for (let n = 0; n < events; n += batch.length) for (const e of batch) if (validateEvent(e, now, bounds, out) === null) ok++;
  const ours = events / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let n = 0; n < events; n += batch.length) for (const e of batch) if (eventSchema.safeParse(e).success) ok++;
  const zod = events / ((performance.now() - t) / 1000);
  if (ok !== 2 * events) throw new Error("bench events must all be valid");
  return { name: "event validation (hand-written vs zod 4, same contract)", eventsPerSec: ours, baselineEventsPerSec: zod, ratio: ours / zod, notes: `${events} events each` };
}

if (import.meta.main) console.log(await benchIngestValidate());
