import { describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RawLog, RawLogError, readRawLog } from "../src/storage/rawlog.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("rawlog - append-only raw zone", () => {
  test("rawlog - records read back in order with format, receive time and positions; reopen appends", () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-raw-"));
    const log = new RawLog(dir, { profile: "fast" });
    const p0 = log.append(1, 1000, bytes('{"name":"a"}'));
    const p1 = log.append(3, 2000, bytes("xyz"));
    log.close();
    const again = new RawLog(dir, { profile: "durable" });
    const p2 = again.append(2, 3000, bytes("line\n"));
    again.close();
    const recs = [...readRawLog(dir)];
    expect(recs.map((r) => [r.position, r.format, r.recvMs, text(r.payload)])).toEqual([
      [p0, 1, 1000, '{"name":"a"}'], [p1, 3, 2000, "xyz"], [p2, 2, 3000, "line\n"],
    ]);
    expect(p0).toBe(0);
    expect(recs[0].next).toBe(p1);
    expect([...readRawLog(dir, p1)].map((r) => r.position)).toEqual([p1, p2]);
  });

  test("rawlog - a torn tail and a flipped byte are detected, naming the position", () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-raw-"));
    const log = new RawLog(dir, { profile: "fast" });
    log.append(1, 1, bytes("first"));
    const p1 = log.append(1, 2, bytes("second"));
    log.close();
    const file = join(dir, readdirSync(dir)[0]);
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 3));
    expect(() => [...readRawLog(dir)]).toThrow(new RawLogError(`raw log torn at position ${p1}`));
    const flipped = Buffer.from(whole);
    flipped[flipped.length - 1] ^= 0xff;
    writeFileSync(file, flipped);
    expect(() => [...readRawLog(dir)]).toThrow(`raw log checksum mismatch at position ${p1}`);
    writeFileSync(file, whole);
    appendFileSync(file, Buffer.from([1, 2]));
    expect(() => [...readRawLog(dir)]).toThrow(`raw log torn at position ${whole.length}`);
  });
});
