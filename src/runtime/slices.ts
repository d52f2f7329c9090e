/**
 * Sliced work: a generator that does a long round (a snapshot, a restore of
 * a large state) in bounded slices and yields between them, so the thread
 * running it can beat its heartbeat there (the partition worker does). Run
 * to its end at once, it is the round in one piece.
 *
 * @example
 *   const state = runSlices(logic.restoreSlices(snap, Infinity)); // one piece
 *   const it = logic.restoreSlices(snap, 5_000); // or a slice at a time:
 *   for (let r = it.next(); !r.done; r = it.next()) beat();
 */

/** Runs sliced work to its end at once: its result. */
export function runSlices<T>(slices: Generator<void, T>): T {
  for (;;) {
    const r = slices.next();
    if (r.done) return r.value;
  }
}

/** Bytes a sliced column copy moves between two yields (copyFloat64Slices, copyIntoSlices). */
const copyBytesPerSlice = 1 << 20;

/** A typed array's bytes, as a view (no copy). */
export function bytesOf(x: ArrayBufferView): Uint8Array {
  return x instanceof Uint8Array ? x : new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

/**
 * Copies `src` into `dst` from its first byte, 1 MiB a slice, yielding
 * between: a large state's column copied without a long pause.
 * @example yield* copyIntoSlices(bytesOf(st.rows), bytesOf(snap.rows));
 */
export function* copyIntoSlices(dst: Uint8Array, src: Uint8Array): Generator<void, void> {
  if (src.byteLength > dst.byteLength) throw new Error(`a column of ${src.byteLength} bytes into ${dst.byteLength}`); // programmer error
  for (let at = 0; at < src.byteLength; at += copyBytesPerSlice) {
    dst.set(src.subarray(at, at + copyBytesPerSlice), at);
    if (at + copyBytesPerSlice < src.byteLength) yield;
  }
}

/**
 * A snapshot column as an aligned Float64Array of its own, as float64Of()
 * gives (a decoded bin is a view into the message, often unaligned): copied
 * 1 MiB a slice, yielding between. A 10 MB column took 100-200 ms in one
 * copy on the 2-core machine (fresh pages).
 * @example const panes = yield* copyFloat64Slices(snap.panes);
 */
export function* copyFloat64Slices(x: Float64Array | Uint8Array): Generator<void, Float64Array<ArrayBuffer>> {
  const bytes = bytesOf(x);
  if (bytes.byteLength % 8 !== 0) throw new Error(`snapshot column of ${bytes.byteLength} bytes is not a Float64Array`);
  const copy = new Uint8Array(bytes.byteLength);
  yield* copyIntoSlices(copy, bytes);
  return new Float64Array(copy.buffer);
}
