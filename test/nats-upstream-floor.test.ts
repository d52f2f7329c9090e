/**
 * The quiet rule's floor in NATS modes (src/nats/upstream-floor.ts), against
 * a real nats-server: the receive time of the oldest message not yet taken,
 * on a durable consumer and on a partition's subject; held while NATS is
 * away; moving again once it is back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { recvMsHeader } from "../src/nats/ingest-consumer.ts";
import { consumerProbe, startUpstreamFloor, subjectProbe } from "../src/nats/upstream-floor.ts";
import { limits } from "../src/runtime/limits.ts";
import { silentLog } from "../src/runtime/log.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";
import { waitFor } from "./helpers/wait.ts";


describe("nats - upstream floor", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const publish = (subject: string, recvMs?: number) => {
    const h = headers();
    if (recvMs !== undefined) h.set(recvMsHeader, String(recvMs));
    return js.publish(subject, new Uint8Array([1]), { headers: h });
  };

  test("nats - consumer probe: the oldest message neither acknowledged nor taken here; the start instant once every one is", async () => {
    await jsm.streams.add({ name: "FLOOR_IN", subjects: ["fin.>"] });
    await jsm.consumers.add("FLOOR_IN", { durable_name: "d", ack_policy: AckPolicy.Explicit });
    const taken = new Set<number>();
    const probe = consumerProbe(jsm, "FLOOR_IN", "d", (seq) => taken.has(seq));
    expect(await probe(50_000)).toBe(50_000); // empty
    for (const ms of [1_000, 2_000, 3_000]) await publish("fin.a", ms);
    expect(await probe(50_000)).toBe(1_000); // nothing delivered yet: the first
    const c = await js.consumers.get("FLOOR_IN", "d");
    const first = (await c.next())!;
    await first.ackAck();
    expect(await probe(50_000)).toBe(2_000);
    const second = (await c.next())!;
    taken.add(second.seq); // taken into this process, awaiting its checkpoint
    expect(await probe(50_000)).toBe(3_000);
    const third = (await c.next())!;
    taken.add(third.seq);
    expect(await probe(50_000)).toBe(50_000); // delivered and taken here, none pending
    taken.delete(third.seq); // given back (nak'ed): waited for again
    expect(await probe(50_000)).toBe(3_000);
    for (const m of [second, third]) await m.ackAck();
    expect(await probe(50_000)).toBe(50_000);
    const before = Date.now();
    await publish("fin.b"); // no Weir-Recv-Ms: when JetStream stored it
    const stored = await probe(Number.MAX_SAFE_INTEGER);
    expect(stored).toBeGreaterThanOrEqual(before - 1_000);
    expect(stored).toBeLessThanOrEqual(Date.now());
  });

  test("nats - subject probe: the first share after the last one taken, on that subject only", async () => {
    await jsm.streams.add({ name: "FLOOR_PARTS", subjects: ["fpart.>"] });
    await publish("fpart.0", 500); // seq 1
    await publish("fpart.1", 400); // seq 2
    await publish("fpart.0", 700); // seq 3
    let lastTaken = 0;
    const probe = subjectProbe(jsm, "FLOOR_PARTS", "fpart.0", () => lastTaken);
    expect(await probe(9_000)).toBe(500);
    lastTaken = 1;
    expect(await probe(9_000)).toBe(700); // fpart.1's older share is another partition's
    lastTaken = 3;
    expect(await probe(9_000)).toBe(9_000);
    expect(await subjectProbe(jsm, "FLOOR_PARTS", "fpart.9", () => 0)(9_000)).toBe(9_000); // nothing on the subject
  });

  test("nats - the floor holds the clock at the oldest waiting message less the publish timeout, keeps it while NATS is away, and moves once it is back", async () => {
    await jsm.streams.add({ name: "FLOOR_HOLD", subjects: ["fhold.>"] });
    await jsm.consumers.add("FLOOR_HOLD", { durable_name: "d", ack_policy: AckPolicy.Explicit });
    const recvMs = Date.now() - 10_000;
    await publish("fhold.a", recvMs);
    const holds = new Map<object, number>();
    const hold = (ms: number) => {
      const k = {};
      holds.set(k, ms);
      return () => void holds.delete(k);
    };
    const quick = await jetstreamManager(nc, { timeout: 1_000 }); // a round waits on NATS up to the request timeout
    const floor = startUpstreamFloor({ hold, log: silentLog, probes: () => [consumerProbe(quick, "FLOOR_HOLD", "d", () => false)] });
    try {
      const expected = recvMs - limits.natsPublishTimeoutMs;
      await waitFor(() => floor.floorMs() === expected, 5_000, "the floor at the waiting message");
      expect([...holds.values()]).toEqual([expected]); // one hold at a time
      await nats.kill();
      const failed = floor.counts().failed;
      await waitFor(() => floor.counts().failed >= failed + 2, 10_000, "rounds failing while NATS is away");
      expect([...holds.values()]).toEqual([expected]);
      await nats.restart();
      const acked = await (async () => {
        for (;;) { // JetStream answers again once the client has reconnected and the server has recovered its store
          try {
            const m = await (await js.consumers.get("FLOOR_HOLD", "d")).next({ expires: 2_000 });
            if (m !== null && (await m.ackAck())) return Date.now();
          } catch {
            await Bun.sleep(100);
          }
        }
      })();
      await waitFor(() => floor.floorMs() >= acked - limits.natsPublishTimeoutMs, 10_000, "the floor following the wall clock again");
      expect(holds.size).toBe(1);
    } finally {
      await floor.stop();
    }
  }, 30_000);
});
