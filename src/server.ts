/**
 * Starts weir: the engine, the HTTP/WebSocket server and (with WEIR_DEMO)
 * the simulators. Used by main.ts, the tests and the benches alike.
 *
 * @example
 *   const w = await startWeir(loadConfig({ WEIR_PORT: "0", WEIR_DATA_DIR: dir }), silentLog);
 *   await fetch(`${w.url}/health`);
 *   await w.stop();
 */
import { websocket } from "hono/bun";
import { join } from "node:path";
import { Engine } from "./engine/engine.ts";
import type { NatsMode } from "./nats/nats-mode.ts";
import { createApp } from "./http/app.ts";
import type { Config } from "./config.ts";
import { limits } from "./runtime/limits.ts";
import type { Log } from "./runtime/log.ts";
import { startSimulators, type Simulators } from "./sim/runner.ts";
import { demoScenario, startDemoMoves, usesDemoUsers } from "./sim/demo-scenario.ts";
import { openReader } from "./storage/db.ts";
import { Lake } from "./lake/lake.ts";

export interface Weir {
  url: string;
  port: number;
  engine: Engine;
  /** The lake: SQL, catalog, export, metric views and their files (src/lake/). */
  lake: Lake;
  /** NATS mode's parts, when WEIR_NATS_URL is set. */
  nats?: NatsMode;
  stop(): Promise<void>;
}

export async function startWeir(cfg: Config, log: Log): Promise<Weir> {
  const engine = await Engine.start(cfg, log);
  let nats: NatsMode | undefined;
  try {
    // Loaded only in NATS mode: the NATS client costs a process that does not use it memory and start-up time.
    if (cfg.natsUrl !== undefined) nats = await (await import("./nats/nats-mode.ts")).startNatsMode(engine, cfg, log);
  } catch (e) {
    await engine.stop();
    throw e;
  }
  let lake: Lake;
  try {
    lake = await Lake.start(cfg, log, engine.metrics.registry);
  } catch (e) {
    await nats?.close();
    await engine.stop();
    throw e;
  }
  engine.holdRawLog(() => lake.rawLogFloor()); // the raw log's retention waits for the lake, within WEIR_RAW_MAX_BYTES
  engine.rules.startActions(nats === undefined ? {} : { natsPublish: nats.publishAction });
  const reader = openReader(join(cfg.dataDir, "weir.db"));
  const app = createApp({ ingest: nats?.ingest ?? engine, read: engine.readModel(reader), live: engine.fanout, ops: engine, rules: engine.rules, views: engine.views, tables: engine.tables, cfg, log, lake });
  const server = Bun.serve({
    hostname: cfg.host,
    port: cfg.port,
    fetch: app.fetch,
    // Far above WEIR_MAX_BODY: the routes' own bound (hono bodyLimit: Content-Length first, else a capped read) answers
    // with the JSON error API.md promises; at Bun's bound Bun would answer 413 with an empty body.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: 30,
    websocket: {
      ...websocket,
      maxPayloadLength: limits.wsPayloadBytesMax,
      backpressureLimit: limits.wsBackpressureBytesMax,
      idleTimeout: limits.wsIdleTimeoutSeconds,
      closeOnBackpressureLimit: false,
    },
  });
  let sims: Simulators | undefined;
  let simPublishing = 0;
  if (cfg.demo) {
    sims = startSimulators({
      ratePerSec: cfg.demoRatePerSec,
      // History only into a fresh data directory: into an old one it would arrive late, or twice.
      backfillMs: engine.registry.size === 0 ? cfg.demoBackfillMs : 0,
      emit: (events) => {
        if (nats !== undefined) {
          // NATS mode: through JetStream like any producer (in cluster mode the partitions' owners may be other processes).
          if (simPublishing >= limits.simPublishesInFlightMax) return false; // NATS slow or away: counted as refused
          simPublishing++;
          void nats.ingest.ingestBytes(new TextEncoder().encode(JSON.stringify(events)), "json").catch(() => {}).finally(() => simPublishing--);
          return true;
        }
        try {
          // Under `durable` the group's verdict comes later; a refusal then is logged by the engine.
          engine.ingestEvents(events).durable?.catch(() => {});
          return true;
        } catch {
          return false; // overloaded: the simulators count a refusal and go on
        }
      },
    });
  }
  // The demo's users table changes while events flow, through the table book as a PATCH would (demo-scenario.ts).
  const moves = cfg.demo && usesDemoUsers(cfg.tables) ? startDemoMoves({
    patch: (rows) => engine.tables.patch(demoScenario.usersTable, { text: JSON.stringify(rows), format: "json" }, undefined),
    onError: (e) => log.warn("demo: a users table change failed", { error: e.message }),
  }) : undefined;
  const url = `http://${cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host}:${server.port}`;
  log.info("weir listening", { url, partitions: cfg.partitions, windows: cfg.windowsText, demo: cfg.demo, dataDir: cfg.dataDir });
  return {
    url,
    port: server.port!,
    engine,
    lake,
    nats,
    async stop() {
      sims?.stop();
      moves?.stop();
      await nats?.stopConsumer();
      // The engine first: while it drains and checkpoints, the server still answers ingest with 503 + Retry-After.
      await engine.stop();
      await nats?.close(); // after the final checkpoints: their messages' acknowledgements go out first
      await server.stop(true);
      await lake.stop();
      reader.close();
    },
  };
}
