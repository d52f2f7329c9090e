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
import { asUnavailable } from "./errors.ts";
import { NatsHttpIngest } from "./http-publish.ts";
import { type IngestConsumer, startIngestConsumer } from "./ingest-consumer.ts";
import { ensureIngestStream, ingestStreamDefaults } from "./ingest-stream.ts";
import { NatsResults } from "./results-out.ts";

export interface NatsMode {
  ingest: IngestPort;
  consumer: IngestConsumer;
  /** Takes no more messages; those taken are acknowledged as their checkpoints commit (engine.stop() commits the last). */
  stopConsumer(): Promise<void>;
  /** Flushes what is waiting (acknowledgements included) and closes the link. */
  close(): Promise<void>;
}

export async function startNatsMode(engine: Engine, cfg: Config, log: Log): Promise<NatsMode> {
  const link = await connectNats(cfg.natsUrl!, { name: `weir-${hostname()}-${process.pid}` });
  try {
    const jsm = await jetstreamManager(link.nc, { timeout: limits.natsApiTimeoutMs }).catch((e) => {
      throw asUnavailable(e, "nats: JetStream");
    });
    const settings = { ...ingestStreamDefaults, duplicateWindowMs: cfg.natsDuplicateWindowMs, maxAgeMs: cfg.natsMaxAgeMs };
    const { created } = await ensureIngestStream(jsm, settings);
    log.info(created ? "nats: stream created" : "nats: stream found", { stream: settings.name, subjects: settings.subjects, url: link.url });
    const js = jetstream(link.nc, { timeout: limits.natsApiTimeoutMs });
    const consumer = await startIngestConsumer({
      js, jsm, log, stream: settings.name,
      port: {
        ingestMessage: (bytes, format, origin) => engine.ingestMessage(bytes, format, origin),
        whenCommitted: (logged, done) => engine.whenCommitted(logged, done),
        deadLetter: (reason, event, source) => engine.deadletters.addRejected(Date.now(), reason, event, source),
        countRejected: (reason, n) => engine.metrics.rejected.inc(n, { reason }),
      },
    });
    const results = new NatsResults(link);
    engine.setResultSink(results);
    engine.addReadinessCheck(() => (link.connected() ? null : `nats: not connected to ${link.url}`));
    const m = engine.metrics.registry;
    m.gauge("weir_nats_connected", "1 while the link to NATS is up (NATS mode)", () => (link.connected() ? 1 : 0));
    m.gauge("weir_nats_disconnects_total", "Times the link to NATS was lost since start", () => link.disconnects(), "counter");
    m.gauge("weir_nats_messages_total", "Ingest messages taken from WEIR_INGEST, by outcome: acked, terminated (malformed or nothing valid), retried (nak'ed)", () =>
      Object.entries(consumer.counts()).filter(([k]) => k !== "waiting").map(([outcome, n]) => [{ outcome }, n] as [Record<string, string>, number]), "counter");
    m.gauge("weir_nats_results_dropped_total", "Results not published on weir.out.* because the link to NATS was down (they are in the store)", () => results.dropped, "counter");
    m.gauge("weir_nats_messages_waiting", "Messages taken and not yet acknowledged: their checkpoints are not committed yet", () => consumer.counts().waiting);
    return {
      ingest: new NatsHttpIngest(link, js, cfg, (rejects, recvMs) => engine.refusedElsewhere(rejects, recvMs)),
      consumer,
      stopConsumer: () => consumer.stop(),
      async close() {
        engine.setResultSink(null);
        await link.close();
      },
    };
  } catch (e) {
    await link.close();
    throw e;
  }
}
