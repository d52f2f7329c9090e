/**
 * What sensitive-value scrubbing costs at ingest: parseEvents over the
 * same 1,000-event batches with `pii` off (a null check per event), with
 * only listed keys, and with every detector on. Two shapes: events whose
 * values hold nothing sensitive (the common case: the detectors' quick
 * character scan decides), and events that each carry an e-mail prop, an
 * IP prop and a card tag (every value hashed; few distinct values, so
 * the token cache answers most).
 */
import { parseEvents } from "../src/actors/ingest-parse.ts";
import type { PiiSettings } from "../src/actors/pii.ts";

const key = "bench-key-0123456789abcdef";
const settings: Record<string, PiiSettings | undefined> = {
  off: undefined,
  keys: { keys: ["email", "user_email"], detect: [], mode: "hash", key },
  detectors: { keys: ["email", "user_email"], detect: ["email", "card", "ip", "phone"], mode: "hash", key },
};

function batch(sensitive: boolean): unknown[] {
  const now = Date.now();
  return JSON.parse(JSON.stringify(Array.from({ length: 1000 }, (_, i) => ({
    name: "shop.view", value: i * 0.5, ts: now - i,
    tags: { page: `/p/${i % 50}`, device: `dev-${i % 20}`, ...(sensitive ? { card: "4111 1111 1111 1111" } : {}) },
    props: sensitive ? { email: `user${i % 100}@example.com`, client_ip: `10.0.${i % 4}.${i % 200}` } : { fw: "2.1.0", build: 1234567 + i },
  })))) as unknown[];
}

export async function benchPii(opts: { events?: number } = {}) {
  const events = opts.events ?? 500_000;
  const out: Record<string, number> = {};
  for (const sensitive of [false, true]) {
    const items = batch(sensitive);
    for (const [mode, pii] of Object.entries(settings)) {
      const bounds = { maxEventAgeMs: 7 * 86400_000, maxFutureSkewMs: 300_000, pii };
      for (let n = 0; n < 20_000; n += items.length) parseEvents(items, Date.now(), bounds); // warm-up
      const t = performance.now();
      let ok = 0;
      for (let n = 0; n < events; n += items.length) ok += parseEvents(items, Date.now(), bounds).n;
      if (ok !== events) throw new Error("bench events must all be valid");
      out[`${sensitive ? "sensitive" : "plain"} values, pii ${mode}: ns/event`] = Math.round((performance.now() - t) * 1e6 / events);
    }
  }
  return { name: "pii scrubbing in parseEvents (validate + signature + scrub)", ...out, notes: `${events} events each, 1,000 per batch` };
}

if (import.meta.main) console.log(await benchPii());
