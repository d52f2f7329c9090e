/**
 * The raw zone: an append-only log of every accepted request body, written
 * before the request is acknowledged. Records are
 *
 *   [u32 length of rest][u32 crc32 of rest][u8 format][f64 receive ms][payload]
 *
 * in segment files `raw-<first position>.log` rolled at segmentBytesMax.
 * A position is a global byte offset (segment start + offset), so replay can
 * start from any checkpoint's position. Profile `fast` writes with write(2)
 * (survives a process crash); `durable` adds fsync before returning
 * (survives power loss).
 *
 * @example
 *   const log = new RawLog("./data/raw", { profile: "fast" });
 *   const pos = log.append(1, Date.now(), body);
 *   for (const r of readRawLog("./data/raw", 0)) replay(r);
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, writevSync, fstatSync } from "node:fs";
import { join } from "node:path";

export const rawLogLimits = {
  segmentBytesMax: 64 * 1024 * 1024,
  headerBytes: 17,
} as const;

export type DurabilityProfile = "fast" | "durable";

export class RawLogError extends Error {
  override name = "RawLogError";
}

export interface RawRecord { position: number; next: number; format: number; recvMs: number; payload: Uint8Array }

export class RawLog {
  private fd = -1;
  private segmentStart = 0;
  private segmentBytes = 0;
  private readonly header = Buffer.alloc(rawLogLimits.headerBytes);

  constructor(private readonly dir: string, private readonly opts: { profile: DurabilityProfile }) {
    mkdirSync(dir, { recursive: true });
    const segs = listSegments(dir);
    if (segs.length > 0) {
      this.segmentStart = segs[segs.length - 1];
      this.fd = openSync(segmentPath(dir, this.segmentStart), "a");
      this.segmentBytes = fstatSync(this.fd).size;
    } else {
      this.openSegment(0);
    }
  }

  /** The position the next record will get. */
  get end(): number {
    return this.segmentStart + this.segmentBytes;
  }

  /** Appends one record; returns its position. Throws (ENOSPC, EIO…) without acknowledging anything. */
  append(format: number, recvMs: number, payload: Uint8Array): number {
    if (this.segmentBytes >= rawLogLimits.segmentBytesMax) this.openSegment(this.end);
    const h = this.header;
    const rest = 9 + payload.byteLength;
    h.writeUInt8(format, 8);
    h.writeDoubleLE(recvMs, 9);
    const crc = Bun.hash.crc32(payload, Bun.hash.crc32(h.subarray(8)));
    h.writeUInt32LE(rest, 0);
    h.writeUInt32LE(crc >>> 0, 4);
    const pos = this.end;
    const written = writevSync(this.fd, [h, payload]);
    if (written !== rawLogLimits.headerBytes + payload.byteLength) throw new RawLogError(`short write: ${written} bytes`);
    if (this.opts.profile === "durable") fsyncSync(this.fd);
    this.segmentBytes += written;
    return pos;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private openSegment(start: number): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.segmentStart = start;
    this.segmentBytes = 0;
    this.fd = openSync(segmentPath(this.dir, start), "a");
  }
}

/** Records from `from` on, in order. A torn or corrupt record ends the log with a RawLogError naming its position. */
export function* readRawLog(dir: string, from = 0): Generator<RawRecord> {
  for (const start of listSegments(dir)) {
    const buf = readFileSync(segmentPath(dir, start));
    if (start + buf.byteLength <= from) continue;
    let off = Math.max(0, from - start);
    while (off < buf.byteLength) {
      if (off + rawLogLimits.headerBytes > buf.byteLength) throw new RawLogError(`raw log torn at position ${start + off}`);
      const rest = buf.readUInt32LE(off);
      const crc = buf.readUInt32LE(off + 4);
      if (off + 8 + rest > buf.byteLength) throw new RawLogError(`raw log torn at position ${start + off}`);
      const body = buf.subarray(off + 8, off + 8 + rest);
      if ((Bun.hash.crc32(body) >>> 0) !== crc) throw new RawLogError(`raw log checksum mismatch at position ${start + off}`);
      yield { position: start + off, next: start + off + 8 + rest, format: body.readUInt8(0), recvMs: body.readDoubleLE(1), payload: body.subarray(9) };
      off += 8 + rest;
    }
  }
}

function listSegments(dir: string): number[] {
  return readdirSync(dir)
    .map((f) => /^raw-(\d+)\.log$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function segmentPath(dir: string, start: number): string {
  return join(dir, `raw-${String(start).padStart(16, "0")}.log`);
}
