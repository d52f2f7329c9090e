/**
 * Partition leases in JetStream KV (bucket `weir_leases`, key `p<N>`), for
 * several weir processes sharing the partitions: who owns a partition
 * (owner), since when (epoch: one more at every change of owner, a fencing
 * token), and until when (expiresMs, renewed by the owner well before).
 * Every change is a compare-and-set on the key's revision, so two processes
 * never both believe they took the same lease. A process that dies stops
 * renewing; once its leases expire, others take them with a higher epoch.
 *
 * A lease alone does not stop a stale owner (paused, partitioned away) from
 * writing after it expired: every commit of a partition's checkpoint is
 * therefore fenced too (`commitFenced`): the checkpoint's key in bucket
 * `weir_checkpoints` carries the epoch that wrote it, a new owner first
 * writes its own epoch there (`fence`), and a commit with an older epoch,
 * or one that lost the compare-and-set, is refused with StaleOwnerError.
 *
 * Clocks: expiry compares wall clocks of different processes; leaseMs must
 * exceed their skew plus the renewal period by a margin (limits.natsLease*).
 *
 * @example
 *   const leases = await Leases.open(nc, { owner: "weir-a" });
 *   const held = await leases.claim(3);          // null: someone else holds it
 *   if (held) await leases.fence(3, held);       // before restoring its checkpoint
 *   await leases.commitFenced(3, held, { pos: 4096 }); // throws StaleOwnerError once taken over
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { WeirError } from "../runtime/errors.ts";
import { limits } from "../runtime/limits.ts";

/** What a partition's committed checkpoint is, as its fenced key holds it: the position (cluster mode: the last WEIR_PARTS sequence it holds), and where its state is. */
export interface CheckpointRef { pos: number; blob?: string; recvMs?: number }

/** A partition's lease as stored. */
export interface Lease { owner: string; epoch: number; expiresMs: number }

/** A lease this process holds: its epoch (the fencing token) and the key revision it last wrote. */
export interface Held { partition: number; epoch: number; revision: number; expiresMs: number }

/** What a process should do about a partition's lease now (pure: see leaseStep). */
export type LeaseStep =
  | { kind: "create" } // no lease yet
  | { kind: "take"; epoch: number } // free or expired: take it with this epoch
  | { kind: "renew" } // ours
  | { kind: "wait"; owner: string; untilMs: number }; // someone else's, live

/** A commit (or fence) refused: another process owns the partition now, with a newer epoch. */
export class StaleOwnerError extends WeirError {
  override name = "StaleOwnerError";
  constructor(message: string) {
    super("stale_owner", message);
  }
}

/**
 * The step for `me` given the stored lease at `nowMs`.
 * @example leaseStep("a", { owner: "b", epoch: 4, expiresMs: 100 }, 150) // { kind: "take", epoch: 5 }
 */
export function leaseStep(me: string, current: Lease | null, nowMs: number): LeaseStep {
  if (current === null) return { kind: "create" };
  if (current.owner === me && current.expiresMs > nowMs) return { kind: "renew" };
  if (current.owner === "" || current.expiresMs <= nowMs) return { kind: "take", epoch: current.epoch + 1 };
  return { kind: "wait", owner: current.owner, untilMs: current.expiresMs };
}

/**
 * The lease a process in plain NATS mode (no WEIR_NATS_CLUSTER) holds: it
 * reads WEIR_INGEST alone, so a second such process, or a cluster beside
 * it, would split the events between them and aggregate neither whole.
 */
export const soloLease = -1;

const leaseBucket = "weir_leases";
const checkpointBucket = "weir_checkpoints";
const key = (partition: number) => `p${partition}`;
const encoder = new TextEncoder();

export interface LeaseOptions {
  owner: string;
  leaseMs?: number;
  now?: () => number;
}

export class Leases {
  private readonly leaseMs: number;
  private readonly now: () => number;

  private constructor(private readonly leases: KV, private readonly checkpoints: KV, readonly owner: string, o: LeaseOptions) {
    this.leaseMs = o.leaseMs ?? limits.natsLeaseMs;
    this.now = o.now ?? Date.now;
  }

  /** Opens (creating when missing) the two buckets, one value per key. */
  static async open(nc: NatsConnection, o: LeaseOptions): Promise<Leases> {
    if (o.owner.length === 0) throw new Error("a lease owner needs a name"); // programmer error
    const kvm = new Kvm(nc);
    const [leases, checkpoints] = await Promise.all([kvm.create(leaseBucket, { history: 1 }), kvm.create(checkpointBucket, { history: 1 })]);
    return new Leases(leases, checkpoints, o.owner, o);
  }

  /** The stored lease of a partition, or null. */
  async holder(partition: number): Promise<Lease | null> {
    return (await this.read(partition)).lease;
  }

  /** Takes the partition's lease if it is free, expired or ours; null while another process holds it. */
  async claim(partition: number): Promise<Held | null> {
    const { lease, revision } = await this.read(partition);
    const step = leaseStep(this.owner, lease, this.now());
    const expiresMs = this.now() + this.leaseMs;
    try {
      switch (step.kind) {
        case "wait":
          return null;
        case "create": {
          const rev = await this.leases.create(key(partition), this.encode({ owner: this.owner, epoch: 1, expiresMs }));
          return { partition, epoch: 1, revision: rev, expiresMs };
        }
        case "take": {
          const rev = await this.leases.update(key(partition), this.encode({ owner: this.owner, epoch: step.epoch, expiresMs }), revision);
          return { partition, epoch: step.epoch, revision: rev, expiresMs };
        }
        case "renew": {
          const rev = await this.leases.update(key(partition), this.encode({ owner: this.owner, epoch: lease!.epoch, expiresMs }), revision);
          return { partition, epoch: lease!.epoch, revision: rev, expiresMs };
        }
      }
    } catch (e) {
      if (lostRace(e)) return null; // another process changed it between our read and our write
      throw e;
    }
  }

  /** Extends a held lease; null when it was lost (taken over: stop working on the partition). */
  async renew(held: Held): Promise<Held | null> {
    const expiresMs = this.now() + this.leaseMs;
    try {
      const rev = await this.leases.update(key(held.partition), this.encode({ owner: this.owner, epoch: held.epoch, expiresMs }), held.revision);
      return { ...held, revision: rev, expiresMs };
    } catch (e) {
      if (lostRace(e)) return null;
      throw e;
    }
  }

  /** Gives a held lease up (after its last checkpoint): free at once for the next process. False when it was already lost. */
  async release(held: Held): Promise<boolean> {
    try {
      await this.leases.update(key(held.partition), this.encode({ owner: "", epoch: held.epoch, expiresMs: 0 }), held.revision);
      return true;
    } catch (e) {
      if (lostRace(e)) return false;
      throw e;
    }
  }

  /**
   * A new owner's first write: its epoch onto the partition's checkpoint
   * key, so an older owner's commits fail from now on. Returns the position
   * committed so far (−1: none) to restore from.
   */
  async fence(held: Held): Promise<CheckpointRef> {
    return this.commitFenced(held, null);
  }

  /**
   * Commits a partition's checkpoint position (and what else fits a KV
   * value) under the holder's epoch; StaleOwnerError when a newer epoch has
   * fenced the key, or another writer changed it meanwhile. With `meta`
   * null, writes the fence only and keeps the committed position.
   */
  async commitFenced(held: Held, meta: CheckpointRef | null): Promise<CheckpointRef> {
    const k = key(held.partition);
    const entry = await this.checkpoints.get(k);
    const live = entry !== null && entry.operation === "PUT" && entry.value.length > 0;
    const stored = live ? (JSON.parse(new TextDecoder().decode(entry!.value)) as CheckpointRef & { epoch: number; owner?: string }) : { epoch: 0, pos: -1 };
    if (stored.epoch > held.epoch) {
      throw new StaleOwnerError(`partition ${held.partition}: epoch ${held.epoch} of ${this.owner} is stale; epoch ${stored.epoch} owns it`);
    }
    const { epoch: _epoch, owner: _owner, ...storedRef } = stored as CheckpointRef & { epoch: number; owner?: string };
    const ref: CheckpointRef = meta === null ? storedRef : meta;
    const next = { ...ref, epoch: held.epoch, owner: this.owner };
    try {
      if (live) await this.checkpoints.update(k, encoder.encode(JSON.stringify(next)), entry!.revision);
      else await this.checkpoints.create(k, encoder.encode(JSON.stringify(next)));
    } catch (e) {
      if (lostRace(e)) throw new StaleOwnerError(`partition ${held.partition}: another writer committed meanwhile; ${this.owner}'s epoch ${held.epoch} yields`);
      throw e;
    }
    return ref;
  }

  private async read(partition: number): Promise<{ lease: Lease | null; revision: number }> {
    const entry = await this.leases.get(key(partition));
    if (entry === null || entry.operation !== "PUT" || entry.value.length === 0) return { lease: null, revision: entry?.revision ?? 0 };
    return { lease: JSON.parse(new TextDecoder().decode(entry.value)) as Lease, revision: entry.revision };
  }

  private encode(lease: Lease): Uint8Array {
    return encoder.encode(JSON.stringify(lease));
  }
}

/** A compare-and-set that found the key changed (or, for create, present). */
function lostRace(e: unknown): boolean {
  return e instanceof JetStreamApiError && (e.code === JetStreamApiCodes.StreamWrongLastSequence || e.code === 10071);
}
