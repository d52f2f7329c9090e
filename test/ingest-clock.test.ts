import { describe, expect, test } from "bun:test";
import { IngestClock } from "../src/runtime/ingest-clock.ts";

describe("ingest clock", () => {
  test("ingest clock - a worker's now is held back to the oldest receive time still in flight; requests released out of order", () => {
    const ingest = IngestClock.create();
    const worker = IngestClock.attach(ingest.sab);
    const before = Date.now();
    expect(worker.now()).toBeGreaterThanOrEqual(before);
    const later = (t: number) => {
      while (Date.now() <= t); // a millisecond's spin: the next stamp is then later
      return ingest.stamp();
    };
    const first = ingest.stamp();
    const second = later(first); // requests overlap: bodies on ingest threads, a pending group commit
    const third = later(second);
    expect([second > first, third > second, ingest.pending]).toEqual([true, true, 3]);
    expect(worker.now()).toBeLessThanOrEqual(first); // not past the oldest
    expect(worker.now()).toBeGreaterThanOrEqual(before);
    ingest.release(second); // finished before the first: the first still holds the clock
    expect(worker.now()).toBeLessThanOrEqual(first);
    ingest.release(first);
    expect(worker.now()).toBe(third); // the oldest left
    ingest.release(third);
    expect([ingest.pending, worker.now() >= third]).toEqual([0, true]);
  });

  test("ingest clock - stamps never go back, and equal stamps are released one at a time", () => {
    const ingest = IngestClock.create();
    const worker = IngestClock.attach(ingest.sab);
    const stamps = Array.from({ length: 25 }, () => ingest.stamp()); // many within one millisecond
    const ms = Date.now();
    while (Date.now() === ms); // then more in a later one: equal stamps on both sides of a change of millisecond
    stamps.push(...Array.from({ length: 25 }, () => ingest.stamp()));
    expect(stamps[49]).toBeGreaterThan(stamps[0]);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]).toBeGreaterThanOrEqual(stamps[i - 1]);
    for (let i = stamps.length - 1; i > 0; i--) ingest.release(stamps[i]);
    expect([ingest.pending, worker.now()]).toEqual([1, stamps[0]]); // one outstanding, and it holds the clock
    ingest.release(stamps[0]);
    expect(ingest.pending).toBe(0);
  });

  test("ingest clock - the slot is seen from a worker thread", async () => {
    const ingest = IngestClock.create();
    const recvMs = ingest.stamp();
    const src = `
      import { IngestClock } from ${JSON.stringify(new URL("../src/runtime/ingest-clock.ts", import.meta.url).pathname)};
      self.onmessage = (m) => { postMessage(IngestClock.attach(m.data).now()); };
    `;
    const url = URL.createObjectURL(new Blob([src], { type: "application/typescript" }));
    const w = new Worker(url);
    const seen = await new Promise<number>((resolve) => {
      w.onmessage = (m) => resolve(m.data as number);
      setTimeout(() => w.postMessage(ingest.sab), 30);
    });
    w.terminate();
    expect(seen).toBeLessThanOrEqual(recvMs);
  });
  test("ingest clock - hold(): the workers' clock stays at the oldest hold (and at an older stamp while one is in flight) until released", () => {
    const c = IngestClock.create();
    const w = IngestClock.attach(c.sab);
    const past = Date.now() - 60_000;
    const release = c.hold(past);
    expect(w.now()).toBe(past);
    const older = c.hold(past - 1_000);
    expect(w.now()).toBe(past - 1_000);
    const t = c.stamp(); // a request in flight, newer than both holds
    older();
    expect(w.now()).toBe(past);
    release();
    expect(w.now()).toBeLessThanOrEqual(t); // held back to the stamp in flight
    c.release(t);
    release(); // twice: nothing more
    expect(Math.abs(w.now() - Date.now())).toBeLessThan(1_000); // nothing held: the wall clock
  });
});
