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
 *   body: [u8 kind, 7 × 0][f64 from][f64 to][u32 n, u32 slots][n × f64 added ms][n × u32 hi][n × u32 lo][slots × u32 table]
 *
 * (every field aligned to its size: a chunk is 8 + 32 + 16n + 4·slots
 * bytes, a multiple of 8). The first is a base: every id held when the log
 * ended at `to`, oldest first, with an open-addressing table over them
 * (kind 3; src/actors/dedupe.ts DedupeBase), which start-up uses where it
 * lies, without work per id; kind 1, a base without a table (slots 0),
 * is what earlier versions wrote, read id by id. Each later chunk is a delta
 * (kind 2, no table: the ids of the records in [from, to), `from` the
 * previous chunk's `to`), read id by id. Deltas are appended about once a
 * second by a timer, not by requests; a new base replaces the file every
 * limits.dedupeIndexBaseMs (so start-up reads at most that long's deltas) or
 * when the file holds much more than a base would: its entries are copied
 * at once, its table built a slice at a time between other work, the file
 * written beside asynchronously, then renamed over the old one. Nothing is
 * fsynced: a file a crash tore or a power loss emptied is read up to its
 * last whole chunk, or not at all.
 *
 * Reading takes the longest valid prefix of the chain whose `to` the raw
 * log reaches: a torn or corrupt chunk ends it, and so does one past the
 * log's end (a log that lost its tail to a power loss under
 * WEIR_DURABILITY=fast, or was cut by repair-log: an id of a record no
 * longer in the log must not make its re-send a duplicate).
 *
 * @example
 *   const r = readDedupeIndex(rawDir, log.end);
 *   if (r.base !== null) set.attachBase(r.base, now - window);
 *   for (const c of r.chunks) set.addEntries(c, now - window);
 *   const w = new DedupeIndexWriter(rawDir, set);
 *   setInterval(() => w.write({ mark: set.mark(), pos: log.end }), 1000);
 */
import { strict as assert } from "node:assert";
import { closeSync, existsSync, openSync, statSync, truncateSync, unlinkSync, writeSync } from "node:fs";
import { type FileHandle, open, rename } from "node:fs/promises";
import { join } from "node:path";
import { baseSlotsFor, type DedupeBase, fillBaseSlots } from "../actors/dedupe.ts";
import { limits } from "../runtime/limits.ts";

/** Ids as the de-duplication set holds them (src/actors/dedupe.ts DedupeEntries). */
export interface IndexEntries { hi: Uint32Array; lo: Uint32Array; addedMs: Float64Array }

/** What the writer reads from the de-duplication set: the ids added at marks [from, to) still held (how many, then copied into the writer's arrays), and how many it holds. */
export interface IndexSource {
  countBetween(from: number, to: number): number;
  entriesInto(from: number, to: number, out: IndexEntries): void;
  readonly size: number;
}

/** A consistent cut: the set's mark and the raw-log position such that the ids added before the mark are those of the records before it. */
export interface IndexCut { mark: number; pos: number }

/** How a read went: `loaded` (the whole file), `torn` (a prefix: a chunk after it was torn or corrupt, or past the log's end), `missing`, `corrupt` (no usable base), `ahead` (its base is past the log's end). */
export type IndexState = "loaded" | "torn" | "missing" | "corrupt" | "ahead";

export interface IndexRead {
  state: IndexState;
  /** The base with its table (views of the file's bytes), or null (none usable, or a base of an earlier version: then the first of `chunks`). */
  base: DedupeBase | null;
  /** The chunks read id by id, oldest first: deltas (after a base without a table, first). */
  chunks: IndexEntries[];
  /** The raw-log position the base and chunks cover: every record before it (0 when there are none). */
  to: number;
  /** What ended the prefix, for the log. */
  detail?: string;
}

export const dedupeIndexFile = "dedupe.idx";
const headerBytes = 8;
const fixedBodyBytes = 32;
const entryBytes = 16;
const slotBytes = 4;
const kindListBase = 1;
const kindDelta = 2;
const kindTableBase = 3;

assert(fixedBodyBytes % 8 === 0 && headerBytes % 8 === 0, "a chunk keeps its f64 fields aligned");

/**
 * Reads the index in `dir` against a raw log that ends at `rawEnd`; throws
 * only when it cannot cut the file (an unreadable one is `corrupt`). The
 * chunks past the log's end are cut off the file (all of them: the file is
 * deleted): new records will take those positions. The base and chunks are
 * views of the file mapped into memory, not copies: checking the checksums
 * is the only pass over them.
 *
 * @example readDedupeIndex("./data/raw", log.end).state // "loaded"
 */
export function readDedupeIndex(dir: string, rawEnd: number): IndexRead {
  const path = join(dir, dedupeIndexFile);
  const out: IndexRead = { state: "loaded", base: null, chunks: [], to: 0 };
  if (!existsSync(path)) return { ...out, state: "missing" };
  let buf: Uint8Array;
  try {
    // Mapped, not read: the pages are the page cache's, not copied into fresh memory (24 MiB at limits.dedupeIdsMax: 10–50 ms
    // against 0.3–1.2 s read on a loaded 2-core VM, bench/dedupe-index.ts). The file is never written in place (a base
    // replaces it by rename; deltas go to that new file), so the mapping stays as read.
    buf = statSync(path).size === 0 ? new Uint8Array(0) : Bun.mmap(path, { shared: false });
  } catch (e) {
    return { ...out, state: "corrupt", detail: `unreadable: ${(e as Error).message}` };
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0, first = true; off < buf.byteLength; first = false) {
    const c = chunkAt(buf, view, off);
    const fault = typeof c === "string" ? c
      : first && c.kind === kindDelta ? "no base chunk first"
      : !first && (c.kind !== kindDelta || c.from !== out.to) ? "a chunk that does not follow the one before"
      : c.to > rawEnd ? `a chunk covering the raw log to ${c.to}, past its end ${rawEnd}`
      : undefined;
    if (fault === undefined && typeof c !== "string") {
      if (c.kind === kindTableBase) out.base = c.entries;
      else out.chunks.push(c.entries);
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

interface Chunk { kind: number; from: number; to: number; entries: DedupeBase; bytes: number }

/** The valid chunk at `off`, or why there is none. */
function chunkAt(buf: Uint8Array, view: DataView, off: number): Chunk | string {
  const left = buf.byteLength - off;
  if (left < headerBytes + fixedBodyBytes) return "torn chunk";
  const body = view.getUint32(off, true);
  if (body < fixedBodyBytes || (body - fixedBodyBytes) % 8 !== 0) return "bad chunk length";
  if (headerBytes + body > left) return "torn chunk";
  const at = off + headerBytes;
  if ((Bun.hash.crc32(buf.subarray(at, at + body)) >>> 0) !== view.getUint32(off + 4, true)) return "checksum mismatch";
  const kind = view.getUint8(at);
  const n = view.getUint32(at + 24, true);
  const slots = view.getUint32(at + 28, true);
  if (kind !== kindListBase && kind !== kindDelta && kind !== kindTableBase) return `unknown chunk kind ${kind}`;
  if (fixedBodyBytes + n * entryBytes + slots * slotBytes !== body) return "bad entry count";
  // Probing needs an empty slot, and masks with slots - 1.
  if (kind === kindTableBase ? slots <= n || (slots & (slots - 1)) !== 0 : slots !== 0) return "bad table size";
  const from = view.getFloat64(at + 8, true);
  const to = view.getFloat64(at + 16, true);
  if (!Number.isSafeInteger(to) || !Number.isSafeInteger(from) || from > to || to < 0) return "bad positions";
  return { kind, from, to, entries: entriesView(buf, at, n, slots), bytes: headerBytes + body };
}

/** Typed arrays over a chunk body's entries and table (at `at` of an 8-aligned buffer). */
function entriesView(buf: Uint8Array, at: number, n: number, slots: number): DedupeBase {
  const e = buf.byteOffset + at + fixedBodyBytes;
  return {
    addedMs: new Float64Array(buf.buffer, e, n),
    hi: new Uint32Array(buf.buffer, e + 8 * n, n),
    lo: new Uint32Array(buf.buffer, e + 12 * n, n),
    slots: new Uint32Array(buf.buffer, e + 16 * n, slots),
  };
}

/**
 * A chunk's bytes with its fixed fields set, and views over its entries and
 * (zeroed) table to fill; then seal(). In `spare` if it is large enough
 * (a base's buffer, kept for the next: memory already faulted in).
 */
function newChunk(kind: number, from: number, to: number, n: number, slots: number, spare: ArrayBuffer | null = null): { bytes: Uint8Array; e: DedupeBase } {
  const body = fixedBodyBytes + n * entryBytes + slots * slotBytes;
  const len = headerBytes + body;
  // A delta's buffer is per write, sized to its ids; a base's (up to 24 MiB at limits.dedupeIdsMax) is reused, with room to grow.
  const buffer = spare !== null && spare.byteLength >= len ? spare : new ArrayBuffer(spare === null ? len : Math.ceil(len * 1.25 / 8) * 8);
  const bytes = new Uint8Array(buffer, 0, len);
  const view = new DataView(buffer);
  view.setUint32(0, body, true);
  view.setUint8(headerBytes, kind);
  view.setFloat64(headerBytes + 8, from, true);
  view.setFloat64(headerBytes + 16, to, true);
  view.setUint32(headerBytes + 24, n, true);
  view.setUint32(headerBytes + 28, slots, true);
  const e = entriesView(bytes, headerBytes, n, slots);
  if (buffer === spare) e.slots.fill(0);
  return { bytes, e };
}

/** Sets a filled chunk's checksum. */
function seal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer).setUint32(4, Bun.hash.crc32(bytes.subarray(headerBytes)) >>> 0, true);
  return bytes;
}

export interface DedupeIndexWriterOptions {
  /** Called halfway through writing a chunk (test crash points: a kill mid-write). */
  midWrite?: () => void;
  /** A write that failed (ENOSPC, EIO…): the caller logs and counts it; the next write is a base. */
  onError?: (e: Error) => void;
  /** The clock (ms) that schedules bases every limits.dedupeIndexBaseMs; performance.now() by default (tests move it). */
  nowMs?: () => number;
}

/** What one write() put out. */
export interface IndexWritten { kind: "base" | "delta"; entries: number; bytes: number }

/**
 * Keeps the index of one de-duplication set: write(cut) appends the ids
 * added since the last write as a delta, or replaces the file with a base
 * when it is the first write of this process (the file read at start may
 * end in a torn chunk), after a failed write, when the last base is
 * limits.dedupeIndexBaseMs old, or when the file has grown past
 * limits.dedupeIndexSlackFactor bases (plus limits.dedupeIndexSlackBytes).
 * A delta (a second's ids) is written at once; a base (up to 24 MiB at
 * limits.dedupeIdsMax) has its ids copied at once (a consistent cut), its
 * table built limits.dedupeIndexBuildSliceIds ids per turn of the event
 * loop, and its file written asynchronously; the writes that come meanwhile
 * wait for it (settled() resolves when it is done). Failures go to
 * `onError`, never thrown.
 *
 * @example
 *   const w = new DedupeIndexWriter(rawDir, dedupe, { onError: (e) => log.error(e.message) });
 *   w.write({ mark: dedupe.mark(), pos: rawLog.end }); // { kind: "base", entries: 1200, bytes: 24264 }
 *   await w.settled();
 */
export class DedupeIndexWriter {
  private fd = -1;
  private fileBytes = 0;
  private mark = 0;
  private pos = -1;
  private baseAtMs = Number.NEGATIVE_INFINITY;
  private replacing: Promise<void> | null = null;
  /** The last base's buffer, for the next (a base at a time): a new one would be faulted in page by page, on the main thread. */
  private spare: ArrayBuffer | null = null;
  private readonly now: () => number;

  constructor(private readonly dir: string, private readonly source: IndexSource, private readonly opts: DedupeIndexWriterOptions = {}) {
    this.now = opts.nowMs ?? (() => performance.now());
  }

  /** Writes what the set added up to `cut`; nothing when nothing moved or a base is still being written. Returns what it started, or null. */
  write(cut: IndexCut): IndexWritten | null {
    if (this.replacing !== null || (this.fd >= 0 && cut.pos === this.pos && cut.mark === this.mark)) return null;
    assert(this.fd < 0 || (cut.pos >= this.pos && cut.mark >= this.mark), "the de-duplication index's cut went back");
    const size = this.source.size;
    const baseBytes = headerBytes + fixedBodyBytes + entryBytes * size + slotBytes * baseSlotsFor(size);
    const nowMs = this.now();
    const base = this.fd < 0 || nowMs - this.baseAtMs >= limits.dedupeIndexBaseMs ||
      this.fileBytes > limits.dedupeIndexSlackFactor * baseBytes + limits.dedupeIndexSlackBytes;
    const from = base ? 0 : this.mark;
    const n = this.source.countBetween(from, cut.mark);
    const chunk = base ? newChunk(kindTableBase, 0, cut.pos, n, baseSlotsFor(n), this.spare) : newChunk(kindDelta, this.pos, cut.pos, n, 0);
    this.source.entriesInto(from, cut.mark, chunk.e);
    const done = () => {
      this.mark = cut.mark;
      this.pos = cut.pos;
    };
    if (base) {
      this.close();
      this.baseAtMs = nowMs;
      this.replacing = this.replace(chunk.bytes, chunk.e).then(done, (e: Error) => this.opts.onError?.(e)).finally(() => {
        this.spare = chunk.bytes.buffer as ArrayBuffer;
        this.replacing = null;
      });
    } else if (this.append(seal(chunk.bytes))) done();
    return { kind: base ? "base" : "delta", entries: n, bytes: chunk.bytes.byteLength };
  }

  /** Resolves once no base is being written. */
  settled(): Promise<void> {
    return this.replacing ?? Promise.resolve();
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /**
   * Builds a base's table a slice at a time (requests wait at most one
   * slice), then writes it beside the file and renames it over: a crash
   * leaves the old file or the new one, whole.
   */
  private async replace(bytes: Uint8Array, b: DedupeBase): Promise<void> {
    const n = b.hi.length;
    for (let k = 0; k < n; k += limits.dedupeIndexBuildSliceIds) {
      if (k > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      fillBaseSlots(b, k, Math.min(n, k + limits.dedupeIndexBuildSliceIds));
    }
    seal(bytes);
    const path = join(this.dir, dedupeIndexFile);
    const tmp = `${path}.tmp`;
    const file = await open(tmp, "w");
    try {
      const half = bytes.byteLength >>> 1;
      await writeAllAsync(file, bytes.subarray(0, half));
      this.opts.midWrite?.();
      await writeAllAsync(file, bytes.subarray(half));
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    this.fd = openSync(path, "a");
    this.fileBytes = bytes.byteLength;
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
