/**
 * NATS mode (WEIR_NATS_URL): weir's link to NATS, stream WEIR_INGEST
 * ensured, the ingest consumer, HTTP ingest published through JetStream,
 * results out on weir.out.*, and NATS' connection in /ready.
 *
 * @example
 *   const nats = await startNatsMode(engine, cfg, log);
 *   createApp({ ingest: nats.ingest, ... });
 *   await nats.stopConsumer(); await engine.stop(); await nats.close(); // acks of the final checkpoints go out before the link closes
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { hostname } from "node:os";
import type { Config } from "../config.ts";
import type { Engine } from "../engine/engine.ts";
import type { IngestPort } from "../engine/ports.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { connectNats } from "./connection.ts";
import { asUnavailable, NatsModeError } from "./errors.ts";
import { NatsHttpIngest } from "./http-publish.ts";
import { type IngestConsumer, ingestDurable, startIngestConsumer } from "./ingest-consumer.ts";
import { ensureIngestStream, ingestStreamDefaults } from "./ingest-stream.ts";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { NatsPublish } from "../actions/nats.ts";
import { resolve } from "node:path";
import { Cluster, partsStreamName, renewEvery } from "./cluster.ts";
import { Leases, soloLease } from "./leases.ts";
import { Members } from "./members.ts";
import { NatsResults, outSubjectFilter } from "./results-out.ts";
import { outStreamName, type ResultsReplica, startResultsReplica } from "./results-replica.ts";
import { partitionSubjectFilter } from "./subjects.ts";
import { consumerProbe, startUpstreamFloor } from "./upstream-floor.ts";

export interface NatsMode {
  ingest: IngestPort;
  /** One process: the ingest consumer (commit-then-ack); null in cluster mode. */
  consumer: IngestConsumer | null;
  /** Cluster mode (WEIR_NATS_CLUSTER): the partitions shared with the other processes; null for one process. */
  cluster: Cluster | null;
  /** Takes no more messages; those taken are acknowledged as their checkpoints commit (engine.stop() commits the last). */
  stopConsumer(): Promise<void>;
  /** Flushes what is waiting (acknowledgements included) and closes the link. */
  close(): Promise<void>;
  /** The `nats` actions' publisher: a core publish with the alert's Idempotency-Key as Nats-Msg-Id (a stream capturing the subject stores it once). */
  publishAction: NatsPublish;
}

export async function startNatsMode(engine: Engine, cfg: Config, log: Log): Promise<NatsMode> {
  const link = await connectNats(cfg.natsUrl!, { name: `weir-${hostname()}-${process.pid}` });
  let stopGuard: (() => Promise<void>) | null = null;
  try {
    const jsm = await jetstreamManager(link.nc, { timeout: limits.natsApiTimeoutMs }).catch((e) => {
      throw asUnavailable(e, "nats: JetStream");
    });
    const settings = { ...ingestStreamDefaults, duplicateWindowMs: cfg.natsDuplicateWindowMs, maxAgeMs: cfg.natsMaxAgeMs };
    const { created } = await ensureIngestStream(jsm, settings);
    log.info(created ? "nats: stream created" : "nats: stream found", { stream: settings.name, subjects: settings.subjects, url: link.url });
    const js = jetstream(link.nc, { timeout: limits.natsApiTimeoutMs });
    stopGuard = await guardMode(link.nc, cfg, log);
    let cluster: Cluster | null = null;
    let replica: ResultsReplica | null = null;
    const results = new NatsResults(link, cfg.natsCluster ? cfg.nodeName : undefined);
    if (cfg.natsCluster) {
      const streamOf = (name: string, subject: string) => ({ name, subjects: [subject], duplicateWindowMs: cfg.natsDuplicateWindowMs, maxAgeMs: cfg.natsMaxAgeMs });
      await ensureIngestStream(jsm, streamOf(partsStreamName, partitionSubjectFilter));
      await ensureIngestStream(jsm, streamOf(outStreamName, outSubjectFilter));
      engine.setResultSink(results);
      replica = await startResultsReplica({
        js, jsm, port: engine, node: cfg.nodeName, dataDir: cfg.dataDir, sinceMs: Date.now() - cfg.retentionMs.windows, log,
      });
      cluster = await Cluster.start({ engine, nc: link.nc, js, jsm, cfg, log, ingestStream: settings.name });
      log.info("nats: cluster mode", { node: cfg.nodeName, partitions: cfg.partitions, leaseMs: cfg.natsLeaseMs });
    }
    const consumer = cluster !== null ? null : await startIngestConsumer({
      js, jsm, log, stream: settings.name,
      port: {
        ingestMessage: (bytes, format, origin) => engine.ingestMessage(bytes, format, origin),
        whenCommitted: (logged, done) => engine.whenCommitted(logged, done),
        deadLetter: (reason, event, source) => engine.deadletters.addRejected(Date.now(), reason, event, source),
        countRejected: (reason, n) => engine.metrics.rejected.inc(n, { reason }),
      },
    });
    // One process: the quiet rule waits for what is still in WEIR_INGEST (cluster mode's does the same, and more).
    const floor = consumer === null ? null : startUpstreamFloor({
      hold: (ms) => engine.holdClock(ms), log,
      probes: () => [consumerProbe(jsm, settings.name, ingestDurable, consumer.holds)],
    });
    engine.setResultSink(results);
    engine.addReadinessCheck(() => (link.connected() ? null : `nats: not connected to ${link.url}`));
    const m = engine.metrics.registry;
    m.gauge("weir_nats_connected", "1 while the link to NATS is up (NATS mode)", () => (link.connected() ? 1 : 0));
    m.gauge("weir_nats_disconnects_total", "Times the link to NATS was lost since start", () => link.disconnects(), "counter");
    const messageCounts = () => consumer?.counts() ?? cluster!.splitCounts();
    m.gauge("weir_nats_messages_total", "Ingest messages taken from WEIR_INGEST, by outcome: acked, terminated (malformed or nothing valid), retried (nak'ed)", () =>
      Object.entries(messageCounts()).filter(([k]) => k === "acked" || k === "terminated" || k === "retried").map(([outcome, n]) => [{ outcome }, n] as [Record<string, string>, number]), "counter");
    m.gauge("weir_nats_results_dropped_total", "Results not published on weir.out.*: the link to NATS was down past the queue's bound (they are in the store)", () => results.dropped, "counter");
    m.gauge("weir_nats_floor_lag_seconds", "How far behind the wall clock the quiet rule waits for messages still in NATS (upstream-floor.ts)", () =>
      Math.max(0, Date.now() - (floor?.floorMs() ?? cluster!.floorMs())) / 1000);
    m.gauge("weir_nats_results_waiting", "Results computed while the link to NATS is down, waiting to be published", () => results.queued);
    if (consumer !== null) {
      m.gauge("weir_nats_messages_waiting", "Messages taken and not yet acknowledged: their checkpoints are not committed yet", () => consumer.counts().waiting);
    }
    if (cluster !== null) {
      const c = cluster;
      m.gauge("weir_cluster_members", "Live weir processes sharing the partitions (cluster mode)", () => c.status().members.length);
      m.gauge("weir_cluster_partitions_owned", "Partitions this process owns (cluster mode)", () => c.status().owned.length);
      m.gauge("weir_cluster_takeovers_total", "Partitions this process has taken over since start", () => c.status().takeovers, "counter");
      m.gauge("weir_cluster_handoffs_total", "Partitions this process has handed to another since start", () => c.status().handoffs, "counter");
      m.gauge("weir_cluster_lost_total", "Partitions this process gave up because another took their lease or fence", () => c.status().lost, "counter");
      m.gauge("weir_cluster_checkpoints_shared_total", "Checkpoints shared (object store + fenced key) since start", () => c.status().sharedCheckpoints, "counter");
      m.gauge("weir_cluster_results_copied_total", "Results other processes computed, copied from WEIR_OUT into this store", () => replica!.copied(), "counter");
      m.gauge("weir_cluster_last_takeover_seconds", "From claiming a partition to having read its backlog, the last time", () => c.lastTakeoverMs / 1000);
    }
    return {
      ingest: new NatsHttpIngest(link, js, cfg, (rejects, recvMs) => engine.refusedElsewhere(rejects, recvMs)),
      consumer, cluster,
      publishAction: (subject, data, msgId) => {
        const h = headers();
        h.set("Nats-Msg-Id", msgId);
        h.set("Content-Type", "application/json");
        link.nc.publish(subject, data, { headers: h });
      },
      async stopConsumer() {
        if (consumer !== null) {
          await floor?.stop();
          return consumer.stop();
        }
        await cluster!.stopIntake();
        await replica!.stop();
      },
      async close() {
        await floor?.stop();
        engine.setResultSink(null);
        results.close();
        await cluster?.finish();
        await stopGuard?.();
        await link.close();
      },
    };
  } catch (e) {
    await stopGuard?.().catch(() => {});
    await link.close();
    throw e;
  }
}

/**
 * One process in plain NATS mode, or only cluster processes: a process in
 * plain mode holds the solo lease (and refuses to start beside a live
 * cluster member or another plain process); a cluster process refuses to
 * start while a plain one holds it. Resolves to what gives the lease up.
 */
async function guardMode(nc: NatsConnection, cfg: Config, log: Log): Promise<() => Promise<void>> {
  // The solo lease belongs to a data directory: the same weir restarted (after a kill -9 too) takes it back at once.
  const leases = await Leases.open(nc, { owner: `${hostname()}:${resolve(cfg.dataDir)}`, leaseMs: cfg.natsLeaseMs });
  const hint = "run one weir process in plain NATS mode, or set WEIR_NATS_CLUSTER=1 on every process";
  if (cfg.natsCluster) {
    const solo = await leases.holder(soloLease);
    if (solo !== null && solo.owner !== "" && solo.expiresMs > Date.now()) {
      throw new NatsModeError(`nats: weir process ${solo.owner} reads WEIR_INGEST without cluster mode; ${hint}`);
    }
    return async () => {};
  }
  const members = await (await Members.open(nc, { name: cfg.nodeName })).live();
  if (members.length > 0) throw new NatsModeError(`nats: weir processes ${members.join(", ")} share WEIR_INGEST in cluster mode; ${hint}`);
  let held = await leases.claim(soloLease);
  if (held === null) {
    const other = await leases.holder(soloLease);
    throw new NatsModeError(`nats: weir process ${other?.owner ?? "?"} reads WEIR_INGEST already; ${hint}`);
  }
  const timer = setInterval(async () => {
    try {
      const next = await leases.renew(held!);
      if (next === null) log.error("nats: another weir process took WEIR_INGEST's solo lease (this one was paused past it)", {});
      else held = next;
    } catch {
      // NATS away: renewed at the next tick
    }
  }, renewEvery(cfg.natsLeaseMs));
  return async () => {
    clearInterval(timer);
    await leases.release(held!).catch(() => {});
  };
}
