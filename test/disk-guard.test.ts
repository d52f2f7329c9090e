import { describe, expect, test } from "bun:test";
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DiskGuard, formatBytes, freeBytes, type FsSpace } from "../src/storage/disk-guard.ts";
import { withTmpfs } from "./helpers/tmpfs.ts";

const kib = 1024;
const mib = 1024 * kib;

/** A statfs that reports `free` bytes in 4 KiB blocks and counts its calls. */
function fakeStatfs(free: () => number): { statfs: (dir: string) => FsSpace; calls: () => number } {
  let calls = 0;
  return { statfs: () => { calls++; return { bavail: free() / 4096, bsize: 4096 }; }, calls: () => calls };
}

describe("disk-guard - free space reserve", () => {
  test("disk-guard - on a real tmpfs, filling under the reserve is not ok and freeing it is ok again after the interval", () => {
    withTmpfs("4m", (dir) => {
      let nowMs = 0;
      const guard = new DiskGuard(dir, { reserveBytes: mib, checkIntervalMs: 1000, now: () => nowMs });
      expect(freeBytes(dir)).toBe(4 * mib);
      expect(guard.check()).toEqual({ ok: true });
      const filler = join(dir, "filler");
      writeFileSync(filler, new Uint8Array(3.5 * mib));
      expect(freeBytes(dir)).toBe(512 * kib);
      nowMs = 999;
      expect(guard.check()).toEqual({ ok: true }); // still the cached check
      nowMs = 1000;
      const full = { ok: false, freeBytes: 512 * kib, reserveBytes: mib, message: `disk nearly full: 512 KiB free under ${dir}, reserve 1 MiB` };
      expect(guard.check()).toEqual(full);
      unlinkSync(filler);
      nowMs = 1999;
      expect(guard.check()).toEqual(full);
      nowMs = 2000;
      expect(guard.check()).toEqual({ ok: true });
    });
  });

  test("disk-guard - statfs runs once per interval however often check is called", () => {
    let nowMs = 0;
    const fake = fakeStatfs(() => 100 * mib);
    const guard = new DiskGuard("/data", { reserveBytes: mib, checkIntervalMs: 250, now: () => nowMs, statfs: fake.statfs });
    for (let i = 0; i < 10_000; i++) guard.check();
    expect(fake.calls()).toBe(1);
    nowMs = 250;
    guard.check();
    expect(fake.calls()).toBe(2);
  });

  test("disk-guard - exactly the reserve free is ok, one block less is not", () => {
    let nowMs = 0;
    let free = 64 * mib;
    const fake = fakeStatfs(() => free);
    const guard = new DiskGuard("/data", { reserveBytes: 64 * mib, checkIntervalMs: 1000, now: () => nowMs, statfs: fake.statfs });
    expect(guard.check()).toEqual({ ok: true });
    free = 64 * mib - 4096;
    nowMs = 1000;
    expect(guard.check()).toEqual({
      ok: false, freeBytes: 64 * mib - 4096, reserveBytes: 64 * mib, message: "disk nearly full: 64 MiB free under /data, reserve 64 MiB",
    });
  });

  test("disk-guard - the message rounds free space to one decimal", () => {
    const fake = fakeStatfs(() => 794 * 4096);
    const guard = new DiskGuard("/data", { reserveBytes: 64 * mib, checkIntervalMs: 1000, now: () => 0, statfs: fake.statfs });
    expect(guard.check()).toEqual({
      ok: false, freeBytes: 3_252_224, reserveBytes: 64 * mib, message: "disk nearly full: 3.1 MiB free under /data, reserve 64 MiB",
    });
  });

  test("disk-guard - a failing statfs is not ok and names the error", () => {
    const guard = new DiskGuard("/gone", { reserveBytes: mib, checkIntervalMs: 1000, now: () => 0 });
    expect(guard.check()).toEqual({ ok: false, freeBytes: 0, reserveBytes: mib, message: "disk check failed under /gone: ENOENT" });
  });

  test("disk-guard - formatBytes picks binary units", () => {
    expect([0, 512, 1536, 10 * mib, 3 * 1024 * mib].map(formatBytes)).toEqual(["0 B", "512 B", "1.5 KiB", "10 MiB", "3 GiB"]);
  });
});
