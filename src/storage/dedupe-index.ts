/**
 * The de-duplication index: the event ids (as the de-duplication set holds
 * them: 64-bit hashes, each with the time it was added) of every raw-log
 * record before a position, in a side file of the raw log, so that start-up
 * loads them and reads only the log after that position, not the whole
 * WEIR_DEDUPE_WINDOW of it. It is a cache of what the raw log holds: any
 * fault in it only costs a longer read of the log.
 *
 * The file `<raw>/dedupe.idx` is a chain of chunks, each
 *
 *   [u32 body bytes][u32 crc32 of body]
 *   body: [u8 kind, 7 × 0][f64 from][f64 to][u32 n, u32 0][n × f64 added ms][n × u32 hi][n × u32 lo]
 *
 * (every field aligned to its size: a chunk is 8 + 32 + 16n bytes). The
 * first is a base (kind 1: every id held when the log ended at `to`), each
 * later one a delta (kind 2: the ids of the records in [from, to), `from`
 * the previous chunk's `to`). Deltas are appended about once a second
 * by a timer, not by requests; when the file holds much more than a base
 * would, a new base replaces it (written beside, asynchronously, then
 * renamed over it). Nothing is fsynced: a file a crash tore or a power loss emptied
 * is read up to its last whole chunk, or not at all.
 *
 * Reading takes the longest valid prefix of the chain whose `to` the raw
 * log reaches: a torn or corrupt chunk ends it, and so does one past the
 * log's end (a log that lost its tail to a power loss under
 * WEIR_DURABILITY=fast, or was cut by repair-log: an id of a record no
 * longer in the log must not make its re-send a duplicate).
 *
 * @example
 *   const r = readDedupeIndex(rawDir, log.end);
 *   if (r.chunks.length > 0) { for (const c of r.chunks) set.addEntries(c, now - window); readFrom = r.to; }
 *   const w = new DedupeIndexWriter(rawDir, set);
 *   setInterval(() => w.write({ mark: set.mark(), pos: log.end }), 1000);
 */
import { strict as assert } from "node:assert";
import { closeSync, existsSync, openSync, readFileSync, truncateSync, unlinkSync, writeSync } from "node:fs";
import { type FileHandle, open, rename } from "node:fs/promises";
import { join } from "node:path";
import { limits } from "../runtime/limits.ts";

/** Ids as the de-duplication set holds them (src/actors/dedupe.ts DedupeEntries). */
export interface IndexEntries { hi: Uint32Array; lo: Uint32Array; addedMs: Float64Array }

/** What the writer reads from the de-duplication set: the ids added at marks [from, to) still held, and how many it holds. */
export interface IndexSource {
  entriesBetween(from: number, to: number): IndexEntries;
  readonly size: number;
}

/** A consistent cut: the set's mark and the raw-log position such that the ids added before the mark are those of the records before it. */
export interface IndexCut { mark: number; pos: number }

/** How a read went: `loaded` (the whole file), `torn` (a prefix: a chunk after it was torn or corrupt, or past the log's end), `missing`, `corrupt` (no usable base), `ahead` (its base is past the log's end). */
export type IndexState = "loaded" | "torn" | "missing" | "corrupt" | "ahead";

export interface IndexRead {
  state: IndexState;
  /** The chunks of the valid prefix, oldest first (empty unless loaded or torn). */
  chunks: IndexEntries[];
  /** The raw-log position the chunks cover: every record before it (0 when there are none). */
  to: number;
  /** What ended the prefix, for the log. */
  detail?: string;
}

export const dedupeIndexFile = "dedupe.idx";
const headerBytes = 8;
const fixedBodyBytes = 32;
const entryBytes = 16;
const kindBase = 1;
const kindDelta = 2;

assert(fixedBodyBytes % 8 === 0 && headerBytes % 8 === 0, "a chunk keeps its f64 fields aligned");

/**
 * Reads the index in `dir` against a raw log that ends at `rawEnd`; throws
 * only when it cannot cut the file (an unreadable one is `corrupt`). The
 * chunks past the log's end are cut off the file (all of them: the file is
 * deleted): new records will take those positions.
 *
 * @example readDedupeIndex("./data/raw", log.end).state // "loaded"
 */
export function readDedupeIndex(dir: string, rawEnd: number): IndexRead {
  const path = join(dir, dedupeIndexFile);
  if (!existsSync(path)) return { state: "missing", chunks: [], to: 0 };
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    return { state: "corrupt", chunks: [], to: 0, detail: `unreadable: ${(e as Error).message}` };
  }
  const out: IndexRead = { state: "loaded", chunks: [], to: 0 };
  for (let off = 0; off < buf.byteLength;) {
    const c = chunkAt(buf, off);
    const first = out.chunks.length === 0;
    const fault = typeof c === "string" ? c
      : first && c.kind !== kindBase ? "no base chunk first"
      : !first && (c.kind !== kindDelta || c.from !== out.to) ? "a chunk that does not follow the one before"
      : c.to > rawEnd ? `a chunk covering the raw log to ${c.to}, past its end ${rawEnd}`
      : undefined;
    if (fault === undefined && typeof c !== "string") {
      out.chunks.push(c.entries);
      out.to = c.to;
      off += c.bytes;
      continue;
    }
    out.detail = `${fault} at byte ${off} of ${buf.byteLength}`;
    const ahead = typeof c !== "string" && c.to > rawEnd;
    out.state = !first ? "torn" : ahead ? "ahead" : "corrupt";
    // New records will take the positions past the log's end: what the file says of them must go now, not after the first write.
    if (ahead && first) unlinkSync(path);
    else if (ahead) truncateSync(path, off);
    break;
  }
  if (buf.byteLength === 0) Object.assign(out, { state: "corrupt", detail: "an empty file" }); // a power loss after its rename
  return out;
}

interface Chunk { kind: number; from: number; to: number; entries: IndexEntries; bytes: number }

/** The valid chunk at `off`, or why there is none. */
function chunkAt(buf: Buffer, off: number): Chunk | string {
  const left = buf.byteLength - off;
  if (left < headerBytes + fixedBodyBytes) return "torn chunk";
  const body = buf.readUInt32LE(off);
  if (body < fixedBodyBytes || (body - fixedBodyBytes) % entryBytes !== 0) return "bad chunk length";
  if (headerBytes + body > left) return "torn chunk";
  const at = off + headerBytes;
  if ((Bun.hash.crc32(buf.subarray(at, at + body)) >>> 0) !== buf.readUInt32LE(off + 4)) return "checksum mismatch";
  const n = buf.readUInt32LE(at + 24);
  if (fixedBodyBytes + n * entryBytes !== body) return "bad entry count";
  const kind = buf.readUInt8(at);
  const from = buf.readDoubleLE(at + 8);
  const to = buf.readDoubleLE(at + 16);
  if (!Number.isSafeInteger(to) || !Number.isSafeInteger(from) || from > to || to < 0) return "bad positions";
  // Copies, aligned whatever the file buffer's offset: the set takes them entry by entry.
  const e = at + fixedBodyBytes;
  const bytes = (start: number, len: number) => buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + len);
  const entries: IndexEntries = {
    addedMs: new Float64Array(bytes(e, 8 * n)),
    hi: new Uint32Array(bytes(e + 8 * n, 4 * n)),
    lo: new Uint32Array(bytes(e + 12 * n, 4 * n)),
  };
  return { kind, from, to, entries, bytes: headerBytes + body };
}

/** One chunk's bytes. */
function encodeChunk(kind: number, from: number, to: number, e: IndexEntries): Uint8Array {
  const n = e.hi.length;
  const body = fixedBodyBytes + n * entryBytes;
  const buf = Buffer.alloc(headerBytes + body); // per write (about once a second), sized to its ids
  const at = headerBytes;
  buf.writeUInt8(kind, at);
  buf.writeDoubleLE(from, at + 8);
  buf.writeDoubleLE(to, at + 16);
  buf.writeUInt32LE(n, at + 24);
  const e0 = at + fixedBodyBytes;
  buf.set(new Uint8Array(e.addedMs.buffer, e.addedMs.byteOffset, 8 * n), e0);
  buf.set(new Uint8Array(e.hi.buffer, e.hi.byteOffset, 4 * n), e0 + 8 * n);
  buf.set(new Uint8Array(e.lo.buffer, e.lo.byteOffset, 4 * n), e0 + 12 * n);
  buf.writeUInt32LE(body, 0);
  buf.writeUInt32LE(Bun.hash.crc32(buf.subarray(at)) >>> 0, 4);
  return buf;
}

export interface DedupeIndexWriterOptions {
  /** Called halfway through writing a chunk (test crash points: a kill mid-write). */
  midWrite?: () => void;
  /** A write that failed (ENOSPC, EIO…): the caller logs and counts it; the next write is a base. */
  onError?: (e: Error) => void;
}

/** What one write() put out. */
export interface IndexWritten { kind: "base" | "delta"; entries: number; bytes: number }

/**
 * Keeps the index of one de-duplication set: write(cut) appends the ids
 * added since the last write as a delta, or replaces the file with a base
 * when it is the first write of this process (the file read at start may
 * end in a torn chunk), after a failed write, or when the file has grown
 * past limits.dedupeIndexSlackFactor bases (plus limits.dedupeIndexSlackBytes).
 * A delta (a second's ids) is written at once; a base (up to 16 MiB at
 * limits.dedupeIdsMax) asynchronously, off the main thread, and the writes
 * that come meanwhile wait for it (settled() resolves when it is done).
 * Failures go to `onError`, never thrown.
 *
 * @example
 *   const w = new DedupeIndexWriter(rawDir, dedupe, { onError: (e) => log.error(e.message) });
 *   w.write({ mark: dedupe.mark(), pos: rawLog.end }); // { kind: "base", entries: 1200, bytes: 19240 }
 *   await w.settled();
 */
export class DedupeIndexWriter {
  private fd = -1;
  private fileBytes = 0;
  private mark = 0;
  private pos = -1;
  private replacing: Promise<void> | null = null;

  constructor(private readonly dir: string, private readonly source: IndexSource, private readonly opts: DedupeIndexWriterOptions = {}) {}

  /** Writes what the set added up to `cut`; nothing when nothing moved or a base is still being written. Returns what it started, or null. */
  write(cut: IndexCut): IndexWritten | null {
    if (this.replacing !== null || (this.fd >= 0 && cut.pos === this.pos && cut.mark === this.mark)) return null;
    assert(this.fd < 0 || (cut.pos >= this.pos && cut.mark >= this.mark), "the de-duplication index's cut went back");
    const baseBytes = headerBytes + fixedBodyBytes + entryBytes * this.source.size;
    const base = this.fd < 0 || this.fileBytes > limits.dedupeIndexSlackFactor * baseBytes + limits.dedupeIndexSlackBytes;
    const entries = this.source.entriesBetween(base ? 0 : this.mark, cut.mark);
    const chunk = encodeChunk(base ? kindBase : kindDelta, base ? 0 : this.pos, cut.pos, entries);
    const done = () => {
      this.mark = cut.mark;
      this.pos = cut.pos;
    };
    if (base) {
      this.close();
      this.replacing = this.replace(chunk).then(done, (e: Error) => this.opts.onError?.(e)).finally(() => {
        this.replacing = null;
      });
    } else if (this.append(chunk)) done();
    return { kind: base ? "base" : "delta", entries: entries.hi.length, bytes: chunk.byteLength };
  }

  /** Resolves once no base is being written. */
  settled(): Promise<void> {
    return this.replacing ?? Promise.resolve();
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** A base, written beside the file and renamed over it: a crash leaves the old file or the new one, whole. */
  private async replace(chunk: Uint8Array): Promise<void> {
    const path = join(this.dir, dedupeIndexFile);
    const tmp = `${path}.tmp`;
    const file = await open(tmp, "w");
    try {
      const half = chunk.byteLength >>> 1;
      await writeAllAsync(file, chunk.subarray(0, half));
      this.opts.midWrite?.();
      await writeAllAsync(file, chunk.subarray(half));
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    this.fd = openSync(path, "a");
    this.fileBytes = chunk.byteLength;
  }

  /** Appends a delta; false (reported, the file closed) when it failed: the next write is a base. */
  private append(chunk: Uint8Array): boolean {
    try {
      const half = chunk.byteLength >>> 1;
      writeAll(this.fd, chunk.subarray(0, half));
      this.opts.midWrite?.();
      writeAll(this.fd, chunk.subarray(half));
    } catch (e) {
      this.close(); // the file may end in part of this chunk: the next write replaces it
      this.opts.onError?.(e as Error);
      return false;
    }
    this.fileBytes += chunk.byteLength;
    return true;
  }
}

async function writeAllAsync(file: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0, calls = 0; done < bytes.byteLength; calls++) {
    if (calls >= writeCallsMax) throw new Error(`de-duplication index: short write, ${done} of ${bytes.byteLength} bytes`);
    done += (await file.write(bytes, done)).bytesWritten;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0, calls = 0; done < bytes.byteLength; calls++) {
    if (calls >= writeCallsMax) throw new Error(`de-duplication index: short write, ${done} of ${bytes.byteLength} bytes`);
    done += writeSync(fd, bytes, done);
  }
}

/** A regular file writes short only when it fills up, and then the next call fails. */
const writeCallsMax = 4;
