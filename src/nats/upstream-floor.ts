/**
 * NATS modes: the quiet rule must not pass events still in NATS. A window
 * closes by wall time once its series has been quiet for its delay plus
 * the lateness (src/actors/window.ts); in NATS mode an event can wait in
 * JetStream far longer than its series' usual delay: in WEIR_INGEST before
 * a process takes it (NATS away, a message retried with back-off, a
 * backlog after a restart), and in cluster mode again in WEIR_PARTS before
 * the partition's owner reads its share. Its windows would close meanwhile
 * and its events arrive late.
 *
 * So every limits.natsFloorEveryMs this process measures the floor: the
 * receive time of the oldest message not yet taken into its partitions, or,
 * when nothing is waiting, the instant the measurement began; and holds the
 * workers' clock there (Engine.holdClock). Probes:
 * - consumerProbe: WEIR_INGEST's durable consumer. Nothing pending and
 *   nothing awaiting acknowledgement: the start instant. Else the first
 *   message after the consumer's ack floor that this process has not taken
 *   already (one process: taken and awaiting its checkpoint; cluster mode:
 *   acknowledged once its shares are stored, so none).
 * - subjectProbe: a partition's subject in WEIR_PARTS (cluster mode, one per
 *   partition owned): the first share after the last one its feed took.
 * A message is stamped with its receive time before it is published
 * (Weir-Recv-Ms), and weir's publish gives up after
 * limits.natsPublishTimeoutMs (503), so the floor is held that much further
 * back: a message on its way while the probes ran is still covered.
 *
 * While NATS is away nothing can be measured and the floor stays where it
 * was: quiet windows wait for the events in NATS rather than close without
 * them. At most limits.natsFloorLagMsMax, though: a message that never gets
 * acknowledged (past its deliveries) must not stop the quiet rule for good.
 * The price: quiet closes come up to natsFloorEveryMs plus one request
 * later than in one process without NATS, and a few small JetStream API
 * requests each round (one, plus one per partition owned).
 *
 * @example
 *   const floor = startUpstreamFloor({ hold: (ms) => engine.holdClock(ms), log,
 *     probes: () => [consumerProbe(jsm, "WEIR_INGEST", "weir-ingest", () => false)] });
 *   floor.stop();
 */
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { recvMsHeader } from "./ingest-consumer.ts";

/** The receive time of the oldest message the probe sees waiting, or `t0` when none is. */
export type FloorProbe = (t0: number) => Promise<number>;

export interface UpstreamFloorOptions {
  /** The probes of this round (the partitions owned change). */
  probes: () => FloorProbe[];
  /** Holds the workers' clock at a receive time until the returned function is called. */
  hold: (atMs: number) => () => void;
  log: Log;
}

export interface UpstreamFloor {
  /** The receive time the quiet rule is held at now. */
  floorMs(): number;
  /** Rounds measured, and rounds that failed (NATS away). */
  counts(): { rounds: number; failed: number };
  /** No more rounds; the hold stays (the process is stopping, the rest waits in NATS for its next start). */
  stop(): Promise<void>;
}

export function startUpstreamFloor(o: UpstreamFloorOptions): UpstreamFloor {
  const margin = limits.natsPublishTimeoutMs;
  let floor = Date.now() - margin;
  let release = o.hold(floor);
  const counts = { rounds: 0, failed: 0 };
  let failing = false;
  const setFloor = (ms: number) => {
    const before = release;
    floor = ms;
    release = o.hold(ms); // the new hold first: the clock never runs free between the two
    before();
  };
  const round = async () => {
    const t0 = Date.now();
    try {
      const floors = await Promise.all(o.probes().map((p) => p(t0)));
      setFloor(Math.max(Math.min(t0, ...floors) - margin, t0 - limits.natsFloorLagMsMax));
      counts.rounds++;
      if (failing) o.log.info("nats: the quiet rule's floor is measured again", { floorMs: floor });
      failing = false;
    } catch (e) {
      counts.failed++;
      if (!failing) o.log.warn("nats: the quiet rule waits for NATS (what is still in it cannot be measured)", { error: (e as Error).message, floorMs: floor });
      failing = true;
      if (floor < t0 - limits.natsFloorLagMsMax) setFloor(t0 - limits.natsFloorLagMsMax);
    }
  };
  let running: Promise<void> | null = null;
  const next = () => {
    if (running !== null) return; // one round at a time: one waiting on NATS (up to its request timeout) skips the ticks meanwhile
    running = round().finally(() => {
      running = null;
    });
  };
  next();
  const timer = setInterval(next, limits.natsFloorEveryMs);
  return {
    floorMs: () => floor,
    counts: () => ({ ...counts }),
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * WEIR_INGEST's durable consumer `durable`: the oldest message not yet
 * acknowledged and not `takenHere`, or t0 when every message is.
 *
 * @example consumerProbe(jsm, "WEIR_INGEST", "weir-ingest", (seq) => waiting.has(seq))
 */
export function consumerProbe(jsm: JetStreamManager, stream: string, durable: string, takenHere: (seq: number) => boolean): FloorProbe {
  return async (t0) => {
    const info = await jsm.consumers.info(stream, durable);
    if (info.num_pending === 0 && info.num_ack_pending === 0) return t0;
    const delivered = info.delivered.stream_seq;
    let seq = info.ack_floor.stream_seq + 1;
    // Skips what this process holds already (its own records, awaiting their checkpoint): at most the acks pending.
    for (let i = 0; i < limits.natsAckPendingMax && seq <= delivered && takenHere(seq); i++) seq++;
    if (seq > delivered && info.num_pending === 0) return t0;
    return oldestFrom(jsm, stream, ">", seq, t0);
  };
}

/**
 * A partition's subject: the first share after `lastTaken()`, or t0.
 *
 * @example subjectProbe(jsm, "WEIR_PARTS", "weir.part.3", () => feed.lastTaken())
 */
export function subjectProbe(jsm: JetStreamManager, stream: string, subject: string, lastTaken: () => number): FloorProbe {
  return (t0) => oldestFrom(jsm, stream, subject, lastTaken() + 1, t0);
}

async function oldestFrom(jsm: JetStreamManager, stream: string, subject: string, seq: number, t0: number): Promise<number> {
  // next_by_subj (nats-server 2.9): the first message on `subject` at or after `seq`; the client's type lists only seq and last_by_subj.
  const m = await jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as unknown as { seq: number });
  return m === null ? t0 : Math.min(t0, storedRecvMs(m));
}

/** A stored message's receive time: its Weir-Recv-Ms header (weir's own publishes), else when JetStream stored it. */
export function storedRecvMs(m: StoredMsg): number {
  const v = Number(m.header?.get(recvMsHeader) ?? "");
  return Number.isFinite(v) && v > 0 ? v : m.time.getTime();
}
