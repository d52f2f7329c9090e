/**
 * Cluster mode (WEIR_NATS_CLUSTER=on): several weir processes on one NATS
 * share the partitions. Each process
 * - splits the messages it pulls from WEIR_INGEST by partition into
 *   WEIR_PARTS (repartition.ts; every process pulls, JetStream spreads the
 *   messages);
 * - announces itself (members.ts) and computes, like every other member,
 *   which partitions it should own (rendezvous hashing over the live members);
 * - claims those partitions' leases (leases.ts), takes each over from its
 *   shared checkpoint (shared-checkpoints.ts: fenced with the new epoch,
 *   then loaded into a fresh partition worker), and reads the partition's
 *   subject from just after that checkpoint (partition-feed.ts), with the
 *   quiet rule held until the backlog is in;
 * - shares every checkpoint its partitions commit, with the last sequence
 *   it holds, so the next owner continues exactly there;
 * - renews its leases; hands a partition it should no longer own (a member
 *   joined) to its new owner: stops reading it, shares its last checkpoint,
 *   releases the lease; and gives up at once a partition whose lease or
 *   fence it lost (a paused process that another has replaced).
 * A process that dies stops renewing: after the lease time the others take
 * its partitions over from their last shared checkpoints.
 *
 * @example
 *   const cluster = await startCluster({ engine, nc: link.nc, js, jsm, cfg, log });
 *   await cluster.stopIntake(); await engine.stop(); await cluster.finish();
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Config } from "../config.ts";
import type { Engine } from "../engine/engine.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { type Held, Leases, StaleOwnerError } from "./leases.ts";
import { assignPartitions, Members } from "./members.ts";
import { type PartitionFeed, startPartitionFeed } from "./partition-feed.ts";
import { type Repartitioner, startRepartitioner } from "./repartition.ts";
import { type SharedCheckpoint, SharedCheckpoints } from "./shared-checkpoints.ts";
import { ingestDurable } from "./ingest-consumer.ts";
import { partitionSubject } from "./subjects.ts";
import { consumerProbe, startUpstreamFloor, subjectProbe, type UpstreamFloor } from "./upstream-floor.ts";

export const partsStreamName = "WEIR_PARTS";

export interface ClusterOptions {
  engine: Engine;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  cfg: Config;
  log: Log;
  /** The ingest stream the splitters pull from. */
  ingestStream: string;
}

/** A partition this process owns. */
interface Owned {
  held: Held;
  feed: PartitionFeed | null;
  /** The partition worker's incarnation from which commits are this ownership's. */
  incarnation: number;
  /** The newest committed checkpoint not yet shared, and whether a share is on its way. */
  next: SharedCheckpoint | null;
  sharing: Promise<void> | null;
  /** The last sequence shared. */
  sharedSeq: number;
  releaseClock: () => void;
  since: number;
}

export interface ClusterStatus {
  name: string;
  members: string[];
  owned: number[];
  takeovers: number;
  handoffs: number;
  lost: number;
  sharedCheckpoints: number;
}

export class Cluster {
  private readonly owned = new Map<number, Owned>();
  /** Partitions being taken over or handed off right now (one change at a time per partition), and those changes. */
  private readonly changing = new Set<number>();
  private readonly changes = new Set<Promise<void>>();
  private members: string[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;
  private floor: UpstreamFloor | null = null;
  private readonly counts = { takeovers: 0, handoffs: 0, lost: 0, sharedCheckpoints: 0 };
  /** Last takeover: ms from claim to caught up (the bench reads it from the logs and /metrics). */
  lastTakeoverMs = 0;

  private constructor(
    private readonly o: ClusterOptions, private readonly leases: Leases, private readonly membership: Members,
    private readonly shared: SharedCheckpoints, private readonly splitter: Repartitioner,
  ) {}

  static async start(o: ClusterOptions): Promise<Cluster> {
    const name = o.cfg.nodeName;
    // Leases belong to this start of the process: one restarted after a kill -9 waits, like any other, for its old leases to
    // expire, and two processes given the same name by mistake never both hold one.
    const leases = await Leases.open(o.nc, { owner: `${name}@${process.pid}.${Date.now().toString(36)}`, leaseMs: o.cfg.natsLeaseMs });
    const membership = await Members.open(o.nc, { name, ttlMs: o.cfg.natsLeaseMs });
    const shared = await SharedCheckpoints.open(o.js, leases);
    const splitter = await startRepartitioner({
      js: o.js, jsm: o.jsm, stream: o.ingestStream, partitions: o.cfg.partitions, bounds: o.cfg, log: o.log,
      port: {
        refused: (rejects, recvMs, source) => o.engine.refusedElsewhere(rejects, recvMs, source),
        deadLetter: (reason, event, source) => o.engine.deadletters.addRejected(Date.now(), reason, event, source),
        countRejected: (reason, n) => o.engine.metrics.rejected.inc(n, { reason }),
      },
    });
    const c = new Cluster(o, leases, membership, shared, splitter);
    // The quiet rule waits for what is still in WEIR_INGEST (split by any process) and in the subjects of the partitions owned here.
    c.floor = startUpstreamFloor({
      hold: (ms) => o.engine.holdClock(ms), log: o.log,
      probes: () => [
        consumerProbe(o.jsm, o.ingestStream, ingestDurable, () => false),
        ...[...c.owned].flatMap(([p, x]) => (x.feed === null ? [] : [subjectProbe(o.jsm, partsStreamName, partitionSubject(p), x.feed.lastTaken)])),
      ],
    });
    o.engine.onPartitionCommitted((p, ck, incarnation) => c.onCommitted(p, ck, incarnation));
    await c.tick();
    c.timer = setInterval(() => void c.tick(), renewEvery(o.cfg.natsLeaseMs));
    return c;
  }

  status(): ClusterStatus {
    return { name: this.o.cfg.nodeName, members: [...this.members], owned: [...this.owned.keys()].sort((a, b) => a - b), ...this.counts };
  }

  /** The receive time the quiet rule waits at for messages still in NATS (for /metrics). */
  floorMs(): number {
    return this.floor?.floorMs() ?? Date.now();
  }

  /** Messages split so far, by outcome (for /metrics). */
  splitCounts(): { acked: number; terminated: number; retried: number; shares: number } {
    return this.splitter.counts();
  }

  /** Stops taking messages and shares (the engine's stop then commits the last checkpoints, which are shared). */
  async stopIntake(): Promise<void> {
    this.stopped = true;
    // As at a handoff: once the feeds stop, no quiet close may pass the shares still in their subjects (the last
    // checkpoints, taken as the engine stops, are the next owners' starting points). Held until the process ends.
    this.o.engine.holdClock(Date.now());
    if (this.timer !== null) clearInterval(this.timer);
    await this.floor?.stop();
    await this.ticking;
    await Promise.all(this.changes);
    await this.splitter.stop();
    await Promise.all([...this.owned.values()].map((x) => x.feed?.stop()));
  }

  /** After the engine stopped: the last checkpoints shared, the leases released, this member gone. */
  async finish(): Promise<void> {
    for (const [p, x] of this.owned) {
      await this.flushShares(p, x);
      x.releaseClock();
      await this.leases.release(x.held).catch((e: Error) => this.o.log.warn("cluster: lease not released; it expires", { partition: p, error: e.message }));
    }
    this.owned.clear();
    await this.membership.leave().catch(() => {});
  }

  /** One round: heartbeat, the live members, then leases renewed, claimed, handed off. */
  private tick(): Promise<void> {
    if (this.ticking !== null) return this.ticking;
    this.ticking = this.round().catch((e: Error) => {
      this.o.log.warn("cluster: round failed; the next one tries again", { error: e.message });
    }).finally(() => {
      this.ticking = null;
    });
    return this.ticking;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    await this.membership.heartbeat();
    this.members = await this.membership.live();
    const mine = new Set(assignPartitions(this.o.cfg.partitions, this.members).get(this.o.cfg.nodeName) ?? []);
    for (const [p, x] of [...this.owned]) {
      if (this.changing.has(p)) continue;
      const renewed = await this.leases.renew(x.held);
      if (renewed === null) {
        await this.lose(p, "its lease was taken over");
        continue;
      }
      x.held = renewed;
      if (!mine.has(p)) this.change(p, () => this.handOff(p));
    }
    for (const p of mine) {
      if (this.owned.has(p) || this.changing.has(p) || this.stopped) continue;
      this.change(p, () => this.takeOver(p));
    }
  }

  /** Runs one change of a partition's hands at a time (stopIntake waits for those under way). */
  private change(p: number, fn: () => Promise<void>): void {
    this.changing.add(p);
    const done: Promise<void> = fn().catch((e: Error) => {
      this.o.log.warn("cluster: partition change failed; the next round tries again", { partition: p, error: e.message });
    }).finally(() => {
      this.changing.delete(p);
      this.changes.delete(done);
    });
    this.changes.add(done);
  }

  private async takeOver(p: number): Promise<void> {
    const held = await this.leases.claim(p);
    if (held === null) return; // another live process holds it: it hands it off, or its lease runs out
    const startedMs = Date.now();
    let ck: SharedCheckpoint | null;
    try {
      ck = await this.shared.takeOver(held);
    } catch (e) {
      await this.leases.release(held).catch(() => {});
      throw e;
    }
    const config = this.o.engine.checkpointConfig;
    if (ck !== null && ck.config !== config) {
      this.o.log.warn("cluster: the partition's checkpoint was taken under other settings: its open windows are dropped", { partition: p, theirs: ck.config, ours: config });
    }
    const state = ck !== null && ck.config === config ? { state: ck.state, series: ck.series } : null;
    const incarnation = await this.o.engine.resetPartition(p, state);
    const from = { seq: ck?.seq ?? 0, recvMs: ck?.recvMs ?? 0 };
    const x: Owned = {
      held, feed: null, incarnation, next: null, sharing: null, sharedSeq: from.seq,
      releaseClock: this.o.engine.holdClock(from.recvMs), since: startedMs,
    };
    this.owned.set(p, x);
    try {
      x.feed = await startPartitionFeed({
        js: this.o.js, jsm: this.o.jsm, stream: partsStreamName, partition: p, from, dedupeWindowMs: this.o.cfg.dedupeWindowMs, log: this.o.log,
        port: {
          ingestParsed: (parsed, origin) => this.o.engine.ingestParsed(parsed, { ...origin, keys: origin.keys.map((k) => this.o.engine.dedupeKey(p, k)) }),
          remember: (keys, ids, recvMs) => {
            for (const k of keys) this.o.engine.dedupe.add(this.o.engine.dedupeKey(p, k), recvMs);
            for (const id of ids) this.o.engine.dedupe.add(this.o.engine.dedupeKey(p, id), recvMs);
          },
        },
        onCaughtUp: () => {
          x.releaseClock();
          this.lastTakeoverMs = Date.now() - startedMs;
          this.o.log.info("cluster: partition taken over", { partition: p, epoch: held.epoch, fromSeq: from.seq, ms: this.lastTakeoverMs });
        },
      });
    } catch (e) {
      // Not reading it: given up again at once (the quiet rule must not stay held), for the next round to try.
      this.owned.delete(p);
      x.releaseClock();
      await this.o.engine.resetPartition(p, null);
      await this.leases.release(held).catch(() => {});
      throw e;
    }
    this.counts.takeovers++;
  }

  /** A partition that should be another member's now: its last checkpoint shared, then its lease released. */
  private async handOff(p: number): Promise<void> {
    const x = this.owned.get(p);
    if (x === undefined) return;
    // From the moment the feed stops, shares for this partition wait in its subject for the next owner: no quiet
    // close here may pass them (a window closed now would be closed in the state handed over, and those shares
    // late). The process's quiet rule is held at this moment until the partition is given up.
    const releaseStop = this.o.engine.holdClock(Date.now());
    try {
      await x.feed?.stop();
      // The feed's last shares are shared with the next checkpoint (at most WEIR_CHECKPOINT_INTERVAL away);
      // waiting longer only spares the next owner some replay.
      const deadline = Date.now() + Math.min(limits.clusterHandoffWaitMs, 3 * this.o.cfg.checkpointIntervalMs);
      while (Date.now() < deadline && x.sharedSeq < (x.feed?.lastTaken() ?? 0)) await Bun.sleep(limits.storeFlushMs);
      await this.flushShares(p, x);
      this.owned.delete(p);
      x.releaseClock();
      await this.o.engine.resetPartition(p, null);
    } finally {
      releaseStop();
    }
    await this.leases.release(x.held).catch(() => {});
    this.counts.handoffs++;
    this.o.log.info("cluster: partition handed off", { partition: p, sharedSeq: x.sharedSeq });
  }

  /** A partition whose lease or fence is another's now: given up at once, its state dropped. */
  private async lose(p: number, why: string): Promise<void> {
    const x = this.owned.get(p);
    if (x === undefined) return;
    this.owned.delete(p);
    this.changing.add(p);
    try {
      x.releaseClock();
      await x.feed?.stop();
      await this.o.engine.resetPartition(p, null);
    } finally {
      this.changing.delete(p);
    }
    this.counts.lost++;
    this.o.log.warn("cluster: partition lost", { partition: p, why });
  }

  private onCommitted(p: number, ck: { pos: number; state: Uint8Array }, incarnation: number): void {
    const x = this.owned.get(p);
    if (x === undefined || x.feed === null || incarnation < x.incarnation) return;
    x.feed.committed(ck.pos);
    const at = x.feed.applied();
    if (at.seq <= x.sharedSeq && x.next === null) return;
    x.next = { seq: at.seq, recvMs: at.recvMs, state: ck.state, series: this.o.engine.partitionSeries(p), config: this.o.engine.checkpointConfig };
    if (x.sharing === null) x.sharing = this.share(p, x);
  }

  /** Shares the newest waiting checkpoint, then any that came meanwhile. */
  private async share(p: number, x: Owned): Promise<void> {
    try {
      while (x.next !== null) {
        const ck = x.next;
        x.next = null;
        try {
          await this.shared.commit(x.held, ck);
          x.sharedSeq = ck.seq;
          this.counts.sharedCheckpoints++;
        } catch (e) {
          if (e instanceof StaleOwnerError) {
            void this.lose(p, e.message);
            return;
          }
          this.o.log.warn("cluster: checkpoint not shared; the next one goes", { partition: p, error: (e as Error).message });
          return;
        }
      }
    } finally {
      x.sharing = null;
    }
  }

  private async flushShares(p: number, x: Owned): Promise<void> {
    await x.sharing;
    if (x.next !== null) await (x.sharing = this.share(p, x));
  }
}

/** Leases are renewed (and members announced) four times per lease, at most every limits.natsLeaseRenewMsMin. */
export function renewEvery(leaseMs: number): number {
  return Math.max(limits.natsLeaseRenewMsMin, Math.floor(leaseMs / 4));
}
