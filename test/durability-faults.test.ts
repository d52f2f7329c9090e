/**
 * Faults of the disk under a running engine (API.md "Ingest", README
 * "Guarantees"): a disk nearly full refuses new writes with 503 +
 * Retry-After before it is exhausted, says so on /ready, loses nothing it
 * acknowledged and takes writes again by itself once space returns; a raw
 * log damaged while weir was down is named at start (segment and position)
 * and `weir repair-log` cuts it there.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, truncateSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readRawLog } from "../src/storage/rawlog.ts";
import { mountTmpfs } from "./helpers/tmpfs.ts";
import { waitFor } from "./helpers/wait.ts";
import { postEvents, seriesIn, startTestWeir, type TestWeir } from "./helpers/weir.ts";

const mib = 1024 * 1024;
/** Only the watermark closes windows here (no quiet closes mid-test); checkpoints often, so the store is busy too. */
const env = { WEIR_LATENESS: "60s", WEIR_CHECKPOINT_INTERVAL: "100ms" };

async function windowsOf(w: TestWeir, series: string, from: number): Promise<Array<Record<string, number>>> {
  const res = await fetch(`${w.url}/api/v1/windows?series=${encodeURIComponent(series)}&window=10s&from=${from}&to=${from + 1}`);
  expect(res.status).toBe(200);
  return (await res.json()).windows;
}

/** Writes zeros to `file` until `dir` has about `leaveBytes` free (or less). */
function fillUntilFree(dir: string, file: string, leaveBytes: number): void {
  const chunk = new Uint8Array(mib);
  const fd = openSync(file, "w");
  try {
    for (let i = 0; i < 4096; i++) {
      const s = statfsSync(dir);
      const free = s.bavail * s.bsize;
      if (free <= leaveBytes) return;
      writeSync(fd, chunk, 0, Math.min(mib, free - leaveBytes));
    }
  } finally {
    closeSync(fd);
  }
}

describe("durability - disk faults", () => {
  test("durability - disk nearly full: 503 + Retry-After and /ready name the disk; nothing acknowledged is lost; writes resume once space returns", async () => {
    const fs = mountTmpfs("48m");
    let w: TestWeir | undefined;
    try {
      w = await startTestWeir({ ...env, WEIR_DISK_RESERVE: "16MiB" }, fs.dir);
      const name = seriesIn(0, "disk.full");
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const acked: number[] = [];
      let n = 0;
      /** One request of 10 events (values n..n+9); records them if acknowledged. */
      const send = async () => {
        const values = Array.from({ length: 10 }, () => n++);
        const r = await postEvents(w!.url, JSON.stringify(values.map((v) => ({ name, value: v, ts: base + (v % 9_000), id: `d${v}` }))));
        if (r.status === 202) acked.push(...values);
        return r;
      };
      for (let i = 0; i < 20; i++) expect((await send()).status).toBe(202);

      const filler = join(fs.dir, "filler");
      fillUntilFree(fs.dir, filler, 8 * mib); // below the 16 MiB reserve, well above empty
      let refused: Awaited<ReturnType<typeof send>> | undefined;
      await waitFor(async () => (refused = await send()).status === 503, 10_000, "a 503 once the reserve is crossed");
      expect(refused!.headers.get("retry-after")).toBe("5");
      expect(refused!.body.error).toMatch(/^overloaded: disk nearly full: [\d.]+ MiB free under .+, reserve 16 MiB; nothing of this request was accepted$/);
      const ready = await fetch(`${w.url}/ready`);
      expect(ready.status).toBe(503);
      expect((await ready.json()).problems).toEqual([expect.stringMatching(/^disk nearly full: [\d.]+ MiB free under /)]);
      const sentWhileFull = n;
      for (let i = 0; i < 5; i++) expect((await send()).status).toBe(503); // still full: still refused, still healthy
      expect((await fetch(`${w.url}/health`)).status).toBe(200);

      unlinkSync(filler);
      await waitFor(async () => (await send()).status === 202, 10_000, "writes accepted again once space returned");
      expect((await fetch(`${w.url}/ready`)).status).toBe(200);
      for (let i = 0; i < 10; i++) expect((await send()).status).toBe(202);

      // Past the watermark: closes [base, base + 10 s). Every acknowledged event is in it once; no refused one is.
      expect((await postEvents(w.url, JSON.stringify([{ name, value: 0, ts: base + 80_000 }]))).status).toBe(202);
      let rows: Array<Record<string, number>> = [];
      await waitFor(async () => (rows = await windowsOf(w!, name, base)).length === 1, 10_000, "the window stored");
      const sum = acked.reduce((a, b) => a + b, 0);
      expect(rows[0]).toMatchObject({ count: acked.length, sum, min: 0, max: Math.max(...acked) });
      expect(acked.length).toBeLessThan(n); // some were refused
      expect(acked.some((v) => v >= sentWhileFull)).toBe(true); // and some after the disk came back were taken
    } finally {
      await w?.stop();
      fs.unmount();
    }
  }, 60_000);

  test("durability - a raw log damaged while stopped is named at start (segment, position); repair-log cuts it there and rebuilds the store from what is left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-dur-"));
    try {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const name = seriesIn(1, "dur.log");
      // No checkpoint after the start-up one: the next start must read the whole log.
      let w = await startTestWeir({ ...env, WEIR_CHECKPOINT_INTERVAL: "10m" }, dir);
      for (const v of [1, 2, 3]) expect((await postEvents(w.url, JSON.stringify([{ name, value: v, ts: base + v }]))).status).toBe(202);
      await w.stop();
      const segs = readdirSync(join(dir, "raw")).filter((f) => f.endsWith(".log"));
      expect(segs).toHaveLength(1);
      const file = join(dir, "raw", segs[0]);
      const positions = [...readRawLog(join(dir, "raw"))].map((r) => r.position);
      expect(positions).toHaveLength(3); // one record per request
      const bytes = readFileSync(file);
      const second = positions[1]; // the record of value 2
      bytes[second + 20] ^= 0xff; // inside its payload: corruption, not a torn tail
      writeFileSync(file, bytes);
      // Graceful stop committed a checkpoint at the end: the log is read anyway at start, and refused.
      const err = await startTestWeir(env, dir).then(() => null, (e: Error) => e);
      expect(err?.name).toBe("RawLogError");
      expect(err?.message).toMatch(new RegExp(`^raw log corrupt: checksum mismatch at position \\d+ in ${segs[0]}; stop weir and run 'bun run weir repair-log'`));

      const repair = Bun.spawnSync(["bun", "src/cli.ts", "repair-log"], { env: { ...process.env, WEIR_DATA_DIR: dir, WEIR_PARTITIONS: "2", WEIR_LATENESS: "60s" } });
      const said = repair.stderr.toString();
      expect(said).toContain(`weir: raw log cut at position ${second} (raw log corrupt: checksum mismatch at position ${second} in ${segs[0]}`);
      expect(said).toContain("checkpoint(s) lie past the cut: rebuilding the store from the log");
      expect(said).toContain("weir: rebuilt");
      expect(repair.exitCode).toBe(0);
      w = await startTestWeir(env, dir);
      expect((await postEvents(w.url, JSON.stringify([{ name, value: 0, ts: base + 80_000 }]))).status).toBe(202);
      let rows: Array<Record<string, number>> = [];
      await waitFor(async () => (rows = await windowsOf(w, name, base)).length === 1, 10_000, "the window stored");
      // What the cut log still holds, once: the first request's event. The cut ones are gone, as repair-log says.
      expect(rows[0]).toMatchObject({ count: 1, sum: 1, min: 1, max: 1 });
      await w.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("durability - a raw log that lost its tail under a checkpoint (a power loss in fast) is named at start; rebuild makes the store match the log", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weir-dur-"));
    try {
      const base = Math.floor(Date.now() / 10_000) * 10_000 - 300_000;
      const name = seriesIn(0, "dur.tail");
      let w = await startTestWeir(env, dir);
      for (const v of [1, 2, 3]) expect((await postEvents(w.url, JSON.stringify([{ name, value: v, ts: base + v }]))).status).toBe(202);
      await w.stop(); // the final checkpoint covers all three records
      const raw = join(dir, "raw");
      const positions = [...readRawLog(raw)].map((r) => r.position);
      expect(positions).toHaveLength(3);
      const seg = readdirSync(raw).filter((f) => f.endsWith(".log"))[0];
      truncateSync(join(raw, seg), positions[1]); // what the disk kept of a log whose last writes never reached it

      const err = await startTestWeir(env, dir).then(() => null, (e: Error) => e);
      expect(err?.name).toBe("StoreError");
      expect(err?.message).toBe(
        `store: partition 0's checkpoint is at raw-log position ${positions[2]} but the raw log ends at ${positions[1]}: ` +
        "the log lost its tail (a power loss under WEIR_DURABILITY=fast, or files removed); " +
        "stop weir and run 'bun run weir rebuild' to rebuild the store from what the log holds",
      );
      const rebuild = Bun.spawnSync(["bun", "src/cli.ts", "rebuild"], { env: { ...process.env, WEIR_DATA_DIR: dir, WEIR_PARTITIONS: "2", WEIR_LATENESS: "60s" } });
      expect(rebuild.stderr.toString()).toContain("weir: rebuilt");
      expect(rebuild.exitCode).toBe(0);
      w = await startTestWeir(env, dir);
      expect((await postEvents(w.url, JSON.stringify([{ name, value: 0, ts: base + 80_000 }]))).status).toBe(202);
      let rows: Array<Record<string, number>> = [];
      await waitFor(async () => (rows = await windowsOf(w, name, base)).length === 1, 10_000, "the window stored");
      expect(rows[0]).toMatchObject({ count: 1, sum: 1 });
      await w.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
