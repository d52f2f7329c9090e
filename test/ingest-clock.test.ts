import { describe, expect, test } from "bun:test";
import { IngestClock } from "../src/runtime/ingest-clock.ts";

describe("ingest clock", () => {
  test("ingest clock - a worker's now is held back to the first receive time still in flight, and released by idle", async () => {
    const ingest = IngestClock.create();
    const worker = IngestClock.attach(ingest.sab);
    const before = Date.now();
    expect(worker.now()).toBeGreaterThanOrEqual(before);
    const first = ingest.stamp();
    await Bun.sleep(20);
    const second = ingest.stamp(); // a second request while the first is in flight (a pending group commit)
    expect(second).toBeGreaterThan(first);
    expect(worker.now()).toBeLessThanOrEqual(first); // not past the older of the two
    expect(worker.now()).toBeGreaterThanOrEqual(before);
    ingest.idle();
    expect(worker.now()).toBeGreaterThanOrEqual(second);
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
});
