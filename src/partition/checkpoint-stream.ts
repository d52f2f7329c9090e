/**
 * A checkpoint's MessagePack, handed out in chunks instead of built as one
 * buffer: the chunks joined are byte for byte what `Encoder.encode(value)`
 * gives (the engine joins and decodes them as before), but no buffer of the
 * whole is made. A partition of 50,000 series snapshots to about 60 MB;
 * one encode() of it took 0.5–2 s of the worker's thread on the 2-core
 * machine (most of it growing and copying fresh buffers), a stretch without
 * a heartbeat. Here a chunk costs the copy of its own bytes, and the worker
 * beats between chunks.
 *
 * Plain objects are walked; a typed array in one is copied from its own
 * memory when its chunk is made (so the value must not change until the
 * last chunk: a snapshot's arrays are its own copies); anything else
 * (numbers, strings, arrays such as a snapshot's alerts or rule instances)
 * is encoded whole by the library when the stream is made.
 *
 * @example
 *   const stream = CheckpointStream.of(pipeline.snapshot(), enc);
 *   const n = stream.chunkCount(scratch.byteLength); // stream.totalBytes in n chunks
 *   for (const chunk of stream.chunks(scratch)) push(chunk); // each a view of scratch, valid until the next
 */
import { strict as assert } from "node:assert";
import type { Encoder } from "@msgpack/msgpack";

export class CheckpointStream {
  private constructor(private readonly parts: Uint8Array[], readonly totalBytes: number) {}

  /** The stream of `value`'s MessagePack; `enc` encodes the small leaves (each as its own copy). */
  static of(value: unknown, enc: Encoder): CheckpointStream {
    const parts: Uint8Array[] = [];
    plan(value, enc, parts);
    let total = 0;
    for (const p of parts) total += p.byteLength;
    return new CheckpointStream(parts, total);
  }

  /** Chunks of `chunkBytes` (the last one shorter) the stream comes in. */
  chunkCount(chunkBytes: number): number {
    return Math.ceil(this.totalBytes / chunkBytes);
  }

  /** The bytes in order, in chunks of scratch's length (the last one shorter): views of `scratch`, overwritten by the next. */
  *chunks(scratch: Uint8Array): Generator<Uint8Array, void> {
    assert(scratch.byteLength > 0, "a chunk holds a byte at least");
    let fill = 0;
    for (const part of this.parts) {
      for (let at = 0; at < part.byteLength;) {
        const n = Math.min(part.byteLength - at, scratch.byteLength - fill);
        scratch.set(part.subarray(at, at + n), fill);
        fill += n;
        at += n;
        if (fill === scratch.byteLength) {
          yield scratch;
          fill = 0;
        }
      }
    }
    if (fill > 0) yield scratch.subarray(0, fill);
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** The parts of value's encoding, in order: headers and leaves encoded now, typed arrays as views of their memory. */
function plan(value: unknown, enc: Encoder, parts: Uint8Array[]): void {
  if (ArrayBuffer.isView(value)) {
    parts.push(binHeader(value.byteLength), new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  } else if (isPlainObject(value)) {
    // As the library's encodeMap (ignoreUndefined off, keys unsorted): every own key, in order.
    const keys = Object.keys(value);
    parts.push(mapHeader(keys.length));
    for (const k of keys) {
      parts.push(enc.encode(k));
      plan(value[k], enc, parts);
    }
  } else {
    parts.push(enc.encode(value));
  }
}

/** The library's `bin` header for `size` bytes: bin 8, 16 or 32, the smallest that holds it. */
function binHeader(size: number): Uint8Array {
  if (size < 0x100) return Uint8Array.of(0xc4, size);
  if (size < 0x10000) return Uint8Array.of(0xc5, size >>> 8, size & 0xff);
  assert(size < 0x100000000, `a bin of ${size} bytes fits MessagePack`);
  return Uint8Array.of(0xc6, size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff);
}

/** The library's map header for `size` keys: fixmap, map 16 or map 32. */
function mapHeader(size: number): Uint8Array {
  if (size < 16) return Uint8Array.of(0x80 + size);
  if (size < 0x10000) return Uint8Array.of(0xde, size >>> 8, size & 0xff);
  return Uint8Array.of(0xdf, size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff);
}
