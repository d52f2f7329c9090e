import { describe, expect, test } from "bun:test";
import { Ring } from "../src/runtime/ring.ts";
import { limits } from "../src/runtime/limits.ts";
import { mixChecksum, mulberry32 } from "./helpers/prng.ts";

const producerUrl = new URL("./fixtures/ring-producer.worker.ts", import.meta.url).href;
const consumerUrl = new URL("./fixtures/ring-consumer.worker.ts", import.meta.url).href;
const echoUrl = new URL("./fixtures/ring-echo.worker.ts", import.meta.url).href;

/** A message whose every byte depends on (id, index), so misplaced bytes show. */
function message(id: number, byteLength: number): Uint8Array {
  const bytes = new Uint8Array(byteLength);
  for (let i = 0; i < byteLength; i++) bytes[i] = (id * 31 + i * 7) & 0xff;
  return bytes;
}

/** A worker's messages in order, queued so none is missed between awaits; rejects once the worker throws. */
function inbox(worker: Worker): <T>() => Promise<T> {
  const queued: unknown[] = [];
  const waiters: { resolve: (data: unknown) => void; reject: (error: unknown) => void }[] = [];
  let error: unknown = null;
  worker.addEventListener("message", (e) => {
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(e.data);
    else queued.push(e.data);
  });
  worker.addEventListener("error", (e) => {
    error = e.error ?? new Error(e.message);
    for (const waiter of waiters.splice(0)) waiter.reject(error);
  });
  return <T>() =>
    new Promise<T>((resolve, reject) => {
      if (queued.length > 0) resolve(queued.shift() as T);
      else if (error) reject(error);
      else waiters.push({ resolve: resolve as (data: unknown) => void, reject });
    });
}

describe("ring", () => {
  test("ring - rounds capacity up to a power of two and defaults messageBytesMax", () => {
    const ring = Ring.create(1000);
    expect(ring.capacityBytes).toBe(1024);
    expect(ring.messageBytesMax).toBe(1024 / 2 - 4);
    expect(Ring.create(limits.ringBytesDefault).messageBytesMax).toBe(limits.ringMessageBytesMax);
    expect(Ring.create(1).capacityBytes).toBe(limits.ringBytesMin);
  });

  test("ring - wrap-around keeps content and order across many laps", () => {
    const ring = Ring.create(1024, 300);
    const random = mulberry32(7);
    const pending: Uint8Array[] = [];
    const scratch: Uint8Array = new Uint8Array(ring.messageBytesMax);
    let pushedBytes = 0;
    for (let id = 0; pushedBytes < 200 * ring.capacityBytes; ) {
      if (random() < 0.55) {
        const bytes = message(id, Math.floor(random() * (ring.messageBytesMax + 1)));
        if (ring.tryPush(bytes)) {
          pending.push(bytes);
          pushedBytes += bytes.length;
          id++;
        }
      } else {
        const n = ring.popInto(scratch);
        const expected = pending.shift();
        expect(n).toBe(expected ? expected.length : -1);
        if (expected) expect(scratch.subarray(0, n)).toEqual(expected);
      }
    }
    for (const expected of pending) expect(ring.tryPop()).toEqual(expected);
    expect(ring.isEmpty()).toBe(true);
  });

  test("ring - byte counters wrap past 2^31 and 2^32", () => {
    const ring = Ring.create(256, 100);
    const header = new Int32Array(ring.sab, 0, 64); // white box: slots 16 (write) and 32 (read)
    for (const start of [0x7fffff00, -256]) {
      header[16] = header[32] = start; // an empty ring whose counters are about to overflow
      for (let id = 0; id < 100; id++) {
        expect(ring.tryPush(message(id, 60))).toBe(true);
        expect(ring.usedBytes()).toBe(64);
        expect(ring.tryPop()).toEqual(message(id, 60));
      }
      expect(header[16]).toBe((start + 100 * 64) | 0); // crossed 2^31, then 2^32
    }
  });

  test("ring - full: tryPush false when full, true again after a pop", () => {
    const ring = Ring.create(256, 100);
    for (let id = 0; id < 4; id++) expect(ring.tryPush(message(id, 50))).toBe(true); // 4 records of 56 bytes
    expect(ring.canPush(50)).toBe(false); // 32 bytes left at the end, and no wrap-around room
    expect(ring.tryPush(message(4, 50))).toBe(false);
    expect(ring.tryPush(message(4, 28))).toBe(true); // exactly the 32 bytes left
    expect(ring.usedBytes()).toBe(256);
    expect(ring.canPush(0)).toBe(false);
    expect(ring.tryPush(new Uint8Array(0))).toBe(false);
    expect(ring.tryPop()).toEqual(message(0, 50));
    expect(ring.canPush(50)).toBe(true);
    expect(ring.tryPush(message(5, 50))).toBe(true);
    for (const id of [1, 2, 3]) expect(ring.tryPop()).toEqual(message(id, 50));
    expect(ring.tryPop()).toEqual(message(4, 28));
    expect(ring.tryPop()).toEqual(message(5, 50));
  });

  test("ring - canPush and canPushAll agree with what tryPush then does", () => {
    const ring = Ring.create(512, 120);
    const random = mulberry32(11);
    const length = () => Math.floor(random() * (ring.messageBytesMax + 1));
    let agreedAll = 0;
    for (let round = 0; round < 20_000; round++) {
      const lengths = Array.from({ length: 1 + Math.floor(random() * 4) }, length);
      const predicted = ring.canPushAll(lengths);
      expect(ring.canPush(lengths[0])).toBe(ring.canPushAll(lengths.slice(0, 1)));
      expect(lengths.every((n) => ring.tryPush(new Uint8Array(n)))).toBe(predicted);
      if (predicted) agreedAll++;
      while (random() < 0.7 && ring.tryPop() !== null) {}
    }
    expect(agreedAll).toBeGreaterThan(1000); // both answers were exercised
    expect(agreedAll).toBeLessThan(19_000);
    expect(ring.canPushAll([])).toBe(true);
    expect(ring.canPushAll([ring.messageBytesMax + 1])).toBe(false);
  });

  test("ring - empty: popInto returns -1 and tryPop null", () => {
    const ring = Ring.create(256);
    const scratch = new Uint8Array(ring.messageBytesMax);
    expect(ring.popInto(scratch)).toBe(-1);
    expect(ring.tryPop()).toBeNull();
    expect(ring.isEmpty()).toBe(true);
    expect(ring.usedBytes()).toBe(0);
    ring.tryPush(message(1, 3));
    expect(ring.isEmpty()).toBe(false);
    expect(ring.usedBytes()).toBe(8);
    expect(ring.popInto(scratch)).toBe(3);
    expect(ring.popInto(scratch)).toBe(-1);
    expect(ring.tryPop()).toBeNull();
  });

  test("ring - oversize message, short scratch and impossible sizes throw RangeError", () => {
    const ring = Ring.create(256, 100);
    expect(() => ring.tryPush(new Uint8Array(101))).toThrow(RangeError);
    expect(ring.isEmpty()).toBe(true);
    expect(ring.canPush(101)).toBe(false);
    expect(() => ring.popInto(new Uint8Array(99))).toThrow(RangeError);
    expect(() => Ring.create(256, 256 / 2 - 3)).toThrow(RangeError);
    expect(() => Ring.create(0)).toThrow(RangeError);
    expect(() => Ring.create(limits.ringBytesMax + 1)).toThrow(RangeError);
  });

  test("ring - attach() gives a second view of the same messages", () => {
    const producer = Ring.create(16_384, 1000);
    const consumer = Ring.attach(producer.sab);
    expect(consumer.capacityBytes).toBe(16_384);
    expect(consumer.messageBytesMax).toBe(1000);
    for (let id = 0; id < 20; id++) expect(producer.tryPush(message(id, id * 37))).toBe(true);
    expect(consumer.usedBytes()).toBe(producer.usedBytes());
    for (let id = 0; id < 20; id++) expect(consumer.tryPop()).toEqual(message(id, id * 37));
    expect(producer.isEmpty()).toBe(true);
    expect(() => Ring.attach(new SharedArrayBuffer(4096))).toThrow();
  });

  test("ring - waitForDataAsync resolves true when a worker pushes", async () => {
    const ring = Ring.create(4096);
    const worker = new Worker(producerUrl);
    try {
      // A timeout beyond the test's own: only a notify can make this pass.
      const next = inbox(worker);
      const woke = ring.waitForDataAsync(60_000);
      worker.postMessage({ sab: ring.sab, once: message(5, 77) });
      expect(await woke).toBe(true);
      expect(ring.tryPop()).toEqual(message(5, 77));
      expect(await next<string>()).toBe("pushed");
    } finally {
      worker.terminate();
    }
  }, 10_000);

  test("ring - waitForDataAsync resolves false on timeout", async () => {
    const ring = Ring.create(4096);
    expect(await ring.waitForDataAsync(20)).toBe(false);
    ring.tryPush(message(1, 1));
    expect(await ring.waitForDataAsync(60_000)).toBe(true);
  });

  test("ring - waitForData blocks a worker until this thread pushes", async () => {
    const ring = Ring.create(4096);
    const sleeping = new Int32Array(ring.sab, 0, 64); // white box: slot 48 is the consumer's sleeping flag
    const worker = new Worker(consumerUrl);
    const rounds = 5;
    try {
      const next = inbox(worker);
      worker.postMessage({ sab: ring.sab, timeoutMs: 60_000, rounds });
      for (let round = 0; round < rounds; round++) {
        expect(await next<string>()).toBe("waiting");
        // Push only once the worker is going to sleep, so that only a notify wakes it.
        while (Atomics.load(sleeping, 48) === 0) await Bun.sleep(1);
        expect(ring.tryPush(message(round, 123))).toBe(true);
        expect(await next()).toEqual({ woke: true, bytes: message(round, 123) });
      }
    } finally {
      worker.terminate();
    }
  }, 10_000);

  test("ring - waitForData returns false on timeout", async () => {
    const ring = Ring.create(4096);
    const worker = new Worker(consumerUrl);
    try {
      const next = inbox(worker);
      worker.postMessage({ sab: ring.sab, timeoutMs: 20, rounds: 1 });
      expect(await next<string>()).toBe("waiting");
      expect(await next()).toEqual({ woke: false, bytes: null });
    } finally {
      worker.terminate();
    }
  }, 10_000);

  test("ring - no lost wake-up over many ping-pong round trips", async () => {
    // Each round trip puts both sides to sleep once, so a push racing the
    // sleeping flag gets many chances; a lost wake-up hangs until the test times out.
    const ping = Ring.create(4096);
    const pong = Ring.create(4096);
    const worker = new Worker(echoUrl);
    const rounds = 40_000;
    try {
      const next = inbox(worker);
      worker.postMessage({ inSab: ping.sab, outSab: pong.sab });
      const scratch = new Uint8Array(pong.messageBytesMax);
      const words = new Uint32Array(scratch.buffer);
      const sent = new Uint32Array(1);
      for (let round = 1; round <= rounds; round++) {
        sent[0] = round;
        if (!ping.tryPush(new Uint8Array(sent.buffer))) throw new Error(`ping ring full in round ${round}`);
        while (pong.popInto(scratch) < 0) await pong.waitForDataAsync(600_000);
        if (words[0] !== round) throw new Error(`echo ${words[0]} in round ${round}`);
      }
      ping.tryPush(new Uint8Array(0));
      expect(await next<string>()).toBe("done");
    } finally {
      worker.terminate();
    }
  }, 30_000);

  test("ring - fuzz: 10 M events from a producer worker arrive in order, none lost", async () => {
    const seed = Number(process.env.RING_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
    console.log(`ring fuzz seed ${seed} (rerun with RING_FUZZ_SEED=${seed})`);
    const events = 10_000_000;
    const batchEventsMax = 1024;
    const ring = Ring.create(64 * 1024, batchEventsMax * 8 + 3);
    const worker = new Worker(producerUrl);
    let failure: unknown = null;
    worker.addEventListener("error", (e) => (failure = e.error ?? new Error(e.message)));
    try {
      const next = inbox(worker);
      worker.postMessage({ sab: ring.sab, seed, events, batchEventsMax });
      const received = await consume(ring, events, () => failure);
      const { checksum, batches, fullRetries } = await next<{ checksum: number; batches: number; fullRetries: number }>();
      console.log(`ring fuzz: ${batches} batches, ${fullRetries} full retries, ${received.sleeps} consumer sleeps`);
      expect(received.messages).toBe(batches);
      expect(received.checksum).toBe(checksum);
      expect(ring.isEmpty()).toBe(true);
    } finally {
      worker.terminate();
    }
  }, 120_000);
});

/** Pops until `events` pairs have arrived, checking each seq is the next one. */
async function consume(ring: Ring, events: number, failure: () => unknown) {
  const scratch = new Uint8Array(ring.messageBytesMax + 1);
  const words = new Uint32Array(scratch.buffer);
  let next = 0;
  let checksum = 0;
  let messages = 0;
  let sleeps = 0;
  while (next < events) {
    const byteLength = ring.popInto(scratch);
    if (byteLength < 0) {
      if (failure()) throw failure();
      sleeps++;
      await ring.waitForDataAsync(60_000); // a lost wake-up hangs here until the test times out
      continue;
    }
    messages++;
    const pairs = byteLength >> 3;
    if (pairs === 0) throw new Error(`message ${messages} of ${byteLength} bytes holds no event`);
    for (let i = 0; i < pairs; i++, next++) {
      if (words[2 * i] !== next) throw new Error(`seq ${words[2 * i]} where ${next} was due`);
      checksum = mixChecksum(checksum, words[2 * i + 1]);
    }
  }
  return { checksum, messages, sleeps };
}
