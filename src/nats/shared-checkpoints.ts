/**
 * Cluster mode: partitions' checkpoints where any weir process can take
 * them over. A checkpoint's state (up to limits.checkpointBytesMax, past
 * a KV value's 1 MiB) is an object in object-store bucket
 * `weir_checkpoint_states`, named by partition, epoch and sequence; the
 * partition's fenced key in KV bucket `weir_checkpoints` (leases.ts) then
 * points at it, under the owner's epoch. So a stale owner may still write
 * an object, but never make it the partition's checkpoint; the object the
 * key stops pointing at is deleted.
 *
 * A state object holds: the partition pipeline's snapshot (as the worker
 * wrote it), the series it refers to in local-id order (a new owner's
 * registry adopts those ids), the settings it was taken under, and the
 * last WEIR_PARTS sequence it holds with that share's receive time.
 *
 * @example
 *   const shared = await SharedCheckpoints.open(js, leases);
 *   await shared.commit(held, { seq: 120, recvMs, state, series, config });
 *   const ck = await shared.takeOver(held); // after claim(): fences, then loads
 */
import { decode, encode } from "@msgpack/msgpack";
import type { JetStreamClient } from "@nats-io/jetstream";
import { Objm, type ObjectStore } from "@nats-io/obj";
import type { Held, Leases } from "./leases.ts";

export interface SharedCheckpoint {
  /** The last WEIR_PARTS sequence of the partition's subject it holds (0: none), and that share's receive time. */
  seq: number;
  recvMs: number;
  state: Uint8Array;
  series: Array<{ key: string; name: string; tags: Record<string, string> }>;
  /** The settings it was taken under (partitions, windows, lateness): restored only under the same. */
  config: string;
}

const bucket = "weir_checkpoint_states";

export class SharedCheckpoints {
  /** The object each partition's key points at, as this process last wrote or read it: deleted once replaced. */
  private readonly current = new Map<number, string>();

  private constructor(private readonly store: ObjectStore, private readonly leases: Leases) {}

  static async open(js: JetStreamClient, leases: Leases): Promise<SharedCheckpoints> {
    const store = await new Objm(js).create(bucket);
    return new SharedCheckpoints(store, leases);
  }

  /**
   * Makes `ck` the partition's checkpoint under `held`'s epoch: the state
   * object first, then the fenced key. StaleOwnerError once a newer epoch
   * fenced the key (its object is deleted then).
   */
  async commit(held: Held, ck: SharedCheckpoint): Promise<void> {
    const name = `p${held.partition}.e${held.epoch}.s${ck.seq}.${Date.now()}`;
    const bytes = encode({ v: 1, seq: ck.seq, recvMs: ck.recvMs, state: ck.state, series: ck.series.map((s) => [s.name, s.tags, s.key]), config: ck.config });
    await this.store.putBlob({ name }, bytes);
    try {
      await this.leases.commitFenced(held, { pos: ck.seq, blob: name, recvMs: ck.recvMs });
    } catch (e) {
      await this.store.delete(name).catch(() => {});
      throw e;
    }
    const previous = this.current.get(held.partition);
    this.current.set(held.partition, name);
    if (previous !== undefined) await this.store.delete(previous).catch(() => {}); // a leftover costs space, not correctness
  }

  /**
   * A new owner's start (after claim()): fences the partition's key with its
   * epoch, so the former owner commits nothing more, then loads the
   * checkpoint it points at; null when the partition has none yet.
   */
  async takeOver(held: Held): Promise<SharedCheckpoint | null> {
    const ref = await this.leases.fence(held);
    if (ref.blob === undefined) return null;
    this.current.set(held.partition, ref.blob);
    const bytes = await this.store.getBlob(ref.blob);
    if (bytes === null) throw new Error(`partition ${held.partition}: checkpoint object ${ref.blob} is missing from bucket ${bucket}`);
    const x = decode(bytes) as { v: number; seq: number; recvMs: number; state: Uint8Array; series: Array<[string, Record<string, string>, string]>; config: string };
    if (x.v !== 1) throw new Error(`partition ${held.partition}: checkpoint object ${ref.blob} has version ${x.v}; this weir reads 1`);
    return { seq: x.seq, recvMs: x.recvMs, state: x.state, series: x.series.map(([name, tags, key]) => ({ key, name, tags })), config: x.config };
  }
}
