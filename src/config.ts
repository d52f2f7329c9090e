/**
 * Configuration from WEIR_* environment variables and an optional JSON file
 * (WEIR_CONFIG), validated with zod at start-up. A bad value stops start-up
 * with a ConfigError naming the key. Environment wins over the file.
 *
 * @example
 *   const cfg = loadConfig({ WEIR_PORT: "0", WEIR_PARTITIONS: "2" });
 */
import { WeirError } from "./runtime/errors.ts";
import { readFileSync, statSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { parseDurationMs, parseWindowSpecs, type WindowSpec } from "./actors/window-spec.ts";
import { rollupsFor } from "./actors/partition-pipeline.ts";
import { parseRule } from "./actors/rules/rule.ts";
import { parseView } from "./actors/views/view.ts";
import { type ActionSpec, parseActions } from "./actions/registry.ts";
import { AnomalyKnobError, type AnomalyKnobRule, parseAnomalyKnobs } from "./actors/anomaly-knobs.ts";
import { formatOfPath, isColumnName, isTableName, parseTable, TableError, type TableRows } from "./actors/views/table.ts";
import { demoUsersTable, demoViews } from "./sim/demo-scenario.ts";
import { demoDashboard } from "./sim/demo-dashboard.ts";
import { type DashboardDef, emptyDashboard, parseDashboard } from "./http/dashboard-def.ts";
import { issueText } from "./runtime/issue-text.ts";
import { limits } from "./runtime/limits.ts";
import { type MetricViewDef, metricViewSchema } from "./lake/metric-view-def.ts";
import type { LogLevel } from "./runtime/log.ts";
import { piiDetectors, type PiiSettings } from "./actors/pii.ts";

export class ConfigError extends WeirError {
  override name = "ConfigError";
  constructor(message: string) {
    super("bad_config", message);
  }
}

/**
 * A bearer token: its role, and whether it may read sensitive columns in the
 * clear (`pii`, written `token:read+pii`; admin implies it).
 */
export interface Token { token: string; role: Role; pii: boolean }
export type Role = "ingest" | "read" | "admin";

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  partitions: number;
  windows: WindowSpec[];
  windowsText: string;
  latenessMs: number;
  maxBodyBytes: number;
  maxSeries: number;
  maxEventAgeMs: number;
  maxFutureSkewMs: number;
  dedupeWindowMs: number;
  queryTimeoutMs: number;
  natsUrl: string | undefined;
  tokens: Token[];
  configFile: string | undefined;
  demo: boolean;
  demoRatePerSec: number;
  /** With WEIR_DEMO on a fresh data directory: history the simulators generate at start. */
  demoBackfillMs: number;
  logLevel: LogLevel;
  ringBytes: number;
  /** How long stored windows are kept, by resolution: the configured specs, 1-minute and 1-hour rollups (and anomalies: as 1m). */
  retentionMs: { windows: number; "1m": number; "1h": number };
  /** Test-only fault injection into workers (WEIR_FAILPOINTS=1). */
  failpoints: boolean;
  /** Test-only: SIGKILL the process the n-th time it reaches a commit boundary (WEIR_CRASH_AT=point:n,…). */
  crashAt: Record<string, number>;
  /** fast: the raw log is written before a 202 (survives a process crash); durable: also fsync'd (survives power loss). */
  durability: "fast" | "durable";
  /** How often each partition commits its state with its results. */
  checkpointIntervalMs: number;
  /** How long raw-log segments are kept (never less than the de-duplication window). */
  rawRetentionMs: number;
  /** A raw-log segment is closed and a new one started after this long. */
  rawSegmentMs: number;
  /** Free disk space under the data directory below which ingest answers 503. */
  diskReserveBytes: number;
  /** WEIR_MEMORY_MAX: the process' RSS budget; past it ingest sheds (IngestPath.shedEarly). */
  memoryBytesMax: number;
  /** WEIR_NEW_SERIES_RATE: new series a second (actors/series-budget.ts). */
  newSeriesPerSec: number;
  /** WEIR_RAW_MAX_BYTES: the raw log's byte budget (storage/rawlog.ts pruneBy). */
  rawBytesMax: number;
  /** A partition worker whose JS heap stays over this after a full GC fails, and is restarted from its checkpoint. */
  workerHeapBytesMax: number;
  /** Threads that parse and validate request bodies (0: the main thread does). */
  ingestThreads: number;
  /** NATS mode: stream WEIR_INGEST's duplicate window (Nats-Msg-Id) and max age, when weir creates it. */
  natsDuplicateWindowMs: number;
  natsMaxAgeMs: number;
  /** NATS mode: share the partitions with the other weir processes on the same NATS (src/nats/cluster.ts). */
  natsCluster: boolean;
  /** The config file's alert rules as written (validated; the engine's rule book adds the admin API's). */
  rules: unknown[];
  /** The config file's actions, validated. */
  actions: Record<string, ActionSpec>;
  /** The config file's continuous views as written (validated; the engine's view book adds the admin API's). */
  views: unknown[];
  /** The config file's `anomalies:` (anomaly knobs per series glob), validated; first match wins. */
  anomalies: AnomalyKnobRule[];
  /** The lake (src/lake/): maintenance on or off, how often compaction and the raw tail run, curated snapshots, raw-zone retention. */
  lake: { enabled: boolean; intervalMs: number; curatedIntervalMs: number; retentionMs: number; deferMs: number };
  /** The config file's `metric_views:` ({name, sql, description}), shape-checked (the SQL is checked by DuckDB at start). */
  metricViews: MetricViewDef[];
  /** The config file's `tables:`, read from their files and validated (the engine's table book adds the admin API's changes). */
  tables: ConfigTable[];
  /** This process's name among them (unique per process; default host-port). */
  nodeName: string;
  /** A partition's lease: how long a dead owner keeps it before another takes it over. */
  natsLeaseMs: number;
  /** Origins (scheme://host[:port], exact) whose pages may call weir from a browser; none by default. */
  corsOrigins: string[];
  /** The config file's `pii:` with WEIR_PII_KEY (src/actors/pii.ts); absent when not configured. */
  pii: PiiSettings | undefined;
  /** The config file's `dashboard:` (http/dashboard-def.ts); the demo's without one under WEIR_DEMO, else empty. */
  dashboard: DashboardDef;
}

/** Commit boundaries WEIR_CRASH_AT can stop the process at (test-only). */
export const crashPoints = ["ingest.after-log", "store.before-commit", "checkpoint.mid", "store.after-commit", "dedupe-index.mid-write", "view-rules.after-alerts"] as const;

const duration = (min: number, max: number) =>
  z.string().transform((s, ctx) => {
    try {
      const ms = parseDurationMs(s);
      if (ms < min || ms > max) throw new Error(`must lie within [${min} ms, ${max} ms]`);
      return ms;
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  });

const intText = (min: number, max: number) =>
  z.string().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(z.number().int().min(min).max(max));

const byteSize = z.string().transform((s, ctx) => {
  const m = /^(\d+)\s*(B|KiB|MiB|GiB)?$/i.exec(s.trim());
  if (!m) {
    ctx.addIssue({ code: "custom", message: 'must be bytes, e.g. "8388608" or "8MiB"' });
    return z.NEVER;
  }
  const unit = (m[2] ?? "B").toLowerCase();
  const mult = unit === "gib" ? 2 ** 30 : unit === "mib" ? 2 ** 20 : unit === "kib" ? 1024 : 1;
  return Number(m[1]) * mult;
});

const boolText = z.enum(["0", "1", "true", "false", "yes", "no"]).transform((v) => v === "1" || v === "true" || v === "yes");

// "token:role" or "token:role+pii" (the grant to read sensitive columns in the clear), comma-separated.
const tokensText = z.string().transform((s, ctx) => {
  const out: Token[] = [];
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [token, grants] = part.split(":");
    const [role, ...extra] = (grants ?? "").split("+");
    if (!token || token.length < 8 || !["ingest", "read", "admin"].includes(role) || extra.some((x) => x !== "pii") || extra.length > 1) {
      ctx.addIssue({ code: "custom", message: `"${part.slice(0, 20)}…" must be <token of ≥ 8 chars>:<ingest|read|admin>[+pii]` });
      return z.NEVER;
    }
    out.push({ token, role: role as Role, pii: extra.length === 1 || role === "admin" });
  }
  return out;
});

const piiSchema = z.strictObject({
  keys: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a tag or prop key")).max(limits.piiKeysMax).default([]),
  detect: z.array(z.enum(piiDetectors)).default([]),
  mode: z.enum(["hash", "mask"]).default("hash"),
});

/** Keys as they appear in the environment; the file uses the same names without the WEIR_ prefix, lower case. */
const envSchema = z.object({
  WEIR_PROFILE: z.enum(["default", "edge"]).default("default"),
  WEIR_HOST: z.string().min(1).default("127.0.0.1"),
  WEIR_PORT: intText(0, 65535).default(8080),
  WEIR_DATA_DIR: z.string().min(1).default("./data"),
  WEIR_PARTITIONS: intText(1, limits.partitionsMax).default(2),
  WEIR_WINDOWS: z.string().default("10s,60s/10s"),
  WEIR_LATENESS: duration(0, 3600_000).default(2000),
  WEIR_MAX_BODY: byteSize.pipe(z.number().int().min(1024).max(256 * 2 ** 20)).default(limits.bodyBytesMaxDefault),
  WEIR_MAX_SERIES: intText(1, limits.seriesMaxCeiling).default(limits.seriesMaxDefault),
  WEIR_MAX_EVENT_AGE: duration(1000, 365 * 86400_000).default(7 * 86400_000),
  WEIR_MAX_FUTURE_SKEW: duration(0, 86400_000).default(5 * 60_000),
  WEIR_DEDUPE_WINDOW: duration(0, 86400_000).default(10 * 60_000),
  WEIR_QUERY_TIMEOUT: duration(100, 600_000).default(5000),
  WEIR_NATS_URL: z.string().url().optional(),
  WEIR_NATS_DUPLICATE_WINDOW: duration(1, 7 * 86_400_000).default(limits.natsIngestDuplicateWindowMsDefault),
  WEIR_NATS_MAX_AGE: duration(60_000, 3650 * 86_400_000).default(limits.natsIngestMaxAgeMsDefault),
  WEIR_CORS_ORIGINS: z.string().default("").transform((s, ctx) => {
    const out: string[] = [];
    for (const o of s.split(",").map((x) => x.trim()).filter(Boolean)) {
      let u: URL | null = null;
      try {
        u = new URL(o);
      } catch { /* reported below */ }
      if (u === null || (u.protocol !== "http:" && u.protocol !== "https:") || u.origin !== o) {
        ctx.addIssue({ code: "custom", message: `"${o.slice(0, 100)}" is not an origin (scheme://host[:port], no path or trailing slash)` });
        return z.NEVER;
      }
      out.push(o);
    }
    return out;
  }),
  WEIR_NATS_CLUSTER: boolText.default(false),
  WEIR_NODE_NAME: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1–64 letters, digits, _ or -").optional(),
  WEIR_NATS_LEASE: duration(limits.natsLeaseMsMin, 600_000).default(limits.natsLeaseMs),
  WEIR_TOKENS: tokensText.default([]),
  WEIR_PII_KEY: z.string().min(limits.piiKeyCharsMin, `must be at least ${limits.piiKeyCharsMin} characters (an HMAC key)`).optional(),
  WEIR_CONFIG: z.string().min(1).optional(),
  WEIR_DEMO: boolText.default(false),
  WEIR_DEMO_RATE: intText(1, 1_000_000).default(200),
  WEIR_DEMO_BACKFILL: duration(0, 24 * 3600_000).default(5 * 60_000),
  WEIR_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  WEIR_FAILPOINTS: boolText.default(false),
  WEIR_RETENTION_WINDOWS: duration(60_000, 3650 * 86400_000).default(2 * 86400_000),
  WEIR_RETENTION_1M: duration(60_000, 3650 * 86400_000).default(30 * 86400_000),
  WEIR_RETENTION_1H: duration(60_000, 3650 * 86400_000).default(400 * 86400_000),
  WEIR_CRASH_AT: z.string().default("").transform((s, ctx) => {
    const out: Record<string, number> = {};
    for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
      const m = /^([a-z.-]+):(\d+)$/.exec(part);
      if (!m || !(crashPoints as readonly string[]).includes(m[1]) || Number(m[2]) < 1) {
        ctx.addIssue({ code: "custom", message: `"${part.slice(0, 40)}" must be <${crashPoints.join("|")}>:<n ≥ 1>` });
        return z.NEVER;
      }
      out[m[1]] = Number(m[2]);
    }
    return out;
  }),
  WEIR_DURABILITY: z.enum(["fast", "durable"]).default("fast"),
  WEIR_CHECKPOINT_INTERVAL: duration(50, 600_000).default(1000),
  WEIR_RETENTION_RAW: duration(60_000, 3650 * 86400_000).default(7 * 86400_000),
  WEIR_RAW_SEGMENT: duration(1000, 86400_000).default(3600_000),
  WEIR_DISK_RESERVE: byteSize.pipe(z.number().int().min(0).max(2 ** 50)).default(limits.diskReserveBytesDefault),
  WEIR_MEMORY_MAX: byteSize.pipe(z.number().int().min(64 * 2 ** 20).max(2 ** 50)).default(limits.memoryBytesMaxDefault),
  WEIR_NEW_SERIES_RATE: z.string().regex(/^\d+$/, "must be a whole number of new series per second").transform(Number)
    .pipe(z.number().int().min(1).max(10_000_000)).default(limits.newSeriesPerSecDefault),
  WEIR_RAW_MAX_BYTES: byteSize.pipe(z.number().int().min(16 * 2 ** 20).max(2 ** 50)).default(limits.rawBytesMaxDefault),
  WEIR_WORKER_HEAP_MAX: byteSize.pipe(z.number().int().min(16 * 2 ** 20).max(2 ** 40)).default(limits.workerHeapBytesDefault),
  WEIR_INGEST_THREADS: z.union([z.literal("auto"), intText(0, limits.ingestThreadsMax)]).default("auto"),
  WEIR_LAKE: boolText.default(true),
  WEIR_LAKE_INTERVAL: duration(1000, 86_400_000).default(limits.lakeIntervalMsDefault),
  WEIR_LAKE_CURATED_INTERVAL: duration(1000, 86_400_000).default(limits.lakeCuratedIntervalMsDefault),
  WEIR_LAKE_DEFER: duration(0, limits.lakeDeferMsMax).default(limits.lakeDeferMsDefault),
  WEIR_RETENTION_LAKE: duration(3600_000, 3650 * 86400_000).default(limits.lakeRetentionMsDefault),
  WEIR_RING_BYTES: byteSize.pipe(z.number().int().min(limits.ringMessageBytesMax * 2).max(2 ** 30)).default(limits.ringBytesDefault),
});

type EnvKey = keyof typeof envSchema.shape;
const envKeys = Object.keys(envSchema.shape) as EnvKey[];

/** Reads the environment (and the WEIR_CONFIG file); throws ConfigError naming the key. */
/**
 * WEIR_PROFILE=edge: a small host (a core or two, little memory and disk):
 * one partition, parsing on the main thread, small rings, the lake off,
 * tighter memory, disk and cardinality budgets. Each applies only where the
 * setting is not given (environment or config file). Measured footprint in
 * BENCHMARKS.md ("Edge profile").
 */
export const edgeProfile: Readonly<Record<string, string>> = {
  WEIR_PARTITIONS: "1", WEIR_INGEST_THREADS: "0", WEIR_RING_BYTES: "4MiB", WEIR_LAKE: "0",
  WEIR_MAX_SERIES: "20000", WEIR_NEW_SERIES_RATE: "500", WEIR_MEMORY_MAX: "256MiB", WEIR_WORKER_HEAP_MAX: "128MiB",
  WEIR_RAW_MAX_BYTES: "1GiB", WEIR_RETENTION_RAW: "1d", WEIR_RETENTION_WINDOWS: "1d",
};

/** Variables the clients read (src/client/emit.ts, the `weir` command), not the server: known, not settings. */
const clientKeys: readonly string[] = ["WEIR_URL", "WEIR_TOKEN"];

/**
 * The WEIR_* variables of `env` that are no setting (loadConfig ignores
 * them), each with the setting it most likely meant (closestSetting; null
 * when none is that close). A typo in
 * a setting otherwise goes unnoticed, its default silently in force.
 * @example unknownSettings({ WEIR_DATA: "/d" }) // [{ key: "WEIR_DATA", meant: "WEIR_DATA_DIR" }]
 */
export function unknownSettings(env: Record<string, string | undefined>): Array<{ key: string; meant: string | null }> {
  const known = new Set<string>([...envKeys, ...clientKeys]);
  return Object.keys(env)
    .filter((k) => k.startsWith("WEIR_") && !known.has(k))
    .sort()
    .map((key) => ({ key, meant: closestSetting(key) }));
}

/** The setting a mistyped WEIR_* name most likely meant: within 2 edits, or one name the start of the other; null: none that close. */
function closestSetting(key: string): EnvKey | null {
  let meant: EnvKey | null = null;
  let best = Infinity;
  for (const k of envKeys) {
    const d = k.startsWith(key) || key.startsWith(k) ? 1 : editDistance(key, k);
    if (d <= 2 && d < best) [best, meant] = [d, k];
  }
  return meant;
}

/** Levenshtein distance of two short names (one row of the table at a time). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next.push(Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    row = next;
  }
  return row[b.length];
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const file = readConfigFile(env.WEIR_CONFIG);
  const merged: Record<string, string> = { ...file.settings };
  for (const k of envKeys) if (env[k] !== undefined && env[k] !== "") merged[k] = env[k]!;
  if (merged.WEIR_PROFILE === "edge") for (const [k, v] of Object.entries(edgeProfile)) merged[k] ??= v;
  const parsed = envSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(`config ${issueText(parsed.error.issues[0], merged, "file")}`);
  }
  const v = parsed.data;
  let windows: WindowSpec[];
  try {
    windows = parseWindowSpecs(v.WEIR_WINDOWS);
  } catch (e) {
    throw new ConfigError(`config WEIR_WINDOWS: ${(e as Error).message}`);
  }
  if (v.WEIR_RETENTION_RAW < v.WEIR_DEDUPE_WINDOW) {
    throw new ConfigError("config WEIR_RETENTION_RAW: must be at least WEIR_DEDUPE_WINDOW (ids are recovered from the raw log)");
  }
  if (v.WEIR_NATS_CLUSTER && v.WEIR_NATS_URL === undefined) throw new ConfigError("config WEIR_NATS_CLUSTER: needs WEIR_NATS_URL (the processes share partitions through NATS)");
  const { rules, actions } = rulesOf(file, windows);
  const natsAction = Object.entries(actions).find(([, a]) => a.type === "nats");
  if (natsAction !== undefined && v.WEIR_NATS_URL === undefined) throw new ConfigError(`config actions.${natsAction[0]}.type: nats needs NATS mode (set WEIR_NATS_URL)`);
  const demoScene = v.WEIR_DEMO && !v.WEIR_NATS_CLUSTER;
  const loopback = ["127.0.0.1", "localhost", "::1"].includes(v.WEIR_HOST) || v.WEIR_HOST.startsWith("127.");
  if (v.WEIR_TOKENS.length === 0 && !loopback) {
    throw new ConfigError(`config WEIR_HOST: "${v.WEIR_HOST}" is not loopback; set WEIR_TOKENS to serve beyond this machine`);
  }
  return {
    host: v.WEIR_HOST, port: v.WEIR_PORT, dataDir: v.WEIR_DATA_DIR, partitions: v.WEIR_PARTITIONS,
    windows, windowsText: v.WEIR_WINDOWS, latenessMs: v.WEIR_LATENESS, maxBodyBytes: v.WEIR_MAX_BODY,
    maxSeries: v.WEIR_MAX_SERIES, maxEventAgeMs: v.WEIR_MAX_EVENT_AGE, maxFutureSkewMs: v.WEIR_MAX_FUTURE_SKEW,
    dedupeWindowMs: v.WEIR_DEDUPE_WINDOW, queryTimeoutMs: v.WEIR_QUERY_TIMEOUT, natsUrl: v.WEIR_NATS_URL,
    tokens: v.WEIR_TOKENS, configFile: v.WEIR_CONFIG, demo: v.WEIR_DEMO, demoRatePerSec: v.WEIR_DEMO_RATE, demoBackfillMs: v.WEIR_DEMO_BACKFILL,
    logLevel: v.WEIR_LOG_LEVEL, ringBytes: v.WEIR_RING_BYTES, failpoints: v.WEIR_FAILPOINTS,
    retentionMs: { windows: v.WEIR_RETENTION_WINDOWS, "1m": v.WEIR_RETENTION_1M, "1h": v.WEIR_RETENTION_1H },
    crashAt: v.WEIR_CRASH_AT, durability: v.WEIR_DURABILITY, checkpointIntervalMs: v.WEIR_CHECKPOINT_INTERVAL,
    rawRetentionMs: v.WEIR_RETENTION_RAW, rawSegmentMs: v.WEIR_RAW_SEGMENT, diskReserveBytes: v.WEIR_DISK_RESERVE, rawBytesMax: v.WEIR_RAW_MAX_BYTES, newSeriesPerSec: v.WEIR_NEW_SERIES_RATE, memoryBytesMax: v.WEIR_MEMORY_MAX,
    workerHeapBytesMax: v.WEIR_WORKER_HEAP_MAX,
    ingestThreads: v.WEIR_INGEST_THREADS === "auto" ? autoIngestThreads() : v.WEIR_INGEST_THREADS,
    natsDuplicateWindowMs: v.WEIR_NATS_DUPLICATE_WINDOW, natsMaxAgeMs: v.WEIR_NATS_MAX_AGE,
    natsCluster: v.WEIR_NATS_CLUSTER, nodeName: v.WEIR_NODE_NAME ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40)}-${v.WEIR_PORT === 0 ? `pid${process.pid}` : v.WEIR_PORT}`,
    lake: { enabled: v.WEIR_LAKE, intervalMs: v.WEIR_LAKE_INTERVAL, curatedIntervalMs: v.WEIR_LAKE_CURATED_INTERVAL, retentionMs: v.WEIR_RETENTION_LAKE, deferMs: v.WEIR_LAKE_DEFER },
    metricViews: metricViewsOf(file.metric_views),
    natsLeaseMs: v.WEIR_NATS_LEASE, corsOrigins: v.WEIR_CORS_ORIGINS, rules, actions, anomalies: anomaliesOf(file),
    pii: piiOf(file.pii, v.WEIR_PII_KEY),
    dashboard: dashboardOf(file.dashboard, v.WEIR_DEMO),
    // The demo's views and users table (sim/demo-scenario.ts) where the file has none; not in cluster mode, where
    // each process's table book is its own and the demo's table changes would differ between processes.
    views: viewsOf(demoScene && file.views === undefined ? { ...file, views: demoViews() } : file),
    tables: demoScene && file.tables === undefined ? [demoUsersTable()] : tablesOf(file, env.WEIR_CONFIG),
  };
}

/** The config file's `rules:` and `actions:`, validated against the windows (ConfigError naming the path of a bad key). */
function rulesOf(file: ConfigFile, windows: WindowSpec[]): { rules: unknown[]; actions: Record<string, ActionSpec> } {
  try {
    const actions = parseActions(file.actions);
    if (file.rules === undefined || file.rules === null) return { rules: [], actions };
    if (!Array.isArray(file.rules)) throw new ConfigError("config rules: must be a list of rules");
    if (file.rules.length > limits.rulesMax) throw new ConfigError(`config rules: at most ${limits.rulesMax} rules`);
    const ruleWindows = { specs: windows, rollups: rollupsFor(windows) };
    const names = new Set<string>();
    file.rules.forEach((def, i) => {
      const rule = parseRule(def, { path: `rules[${i}]`, windows: ruleWindows, actions: [...Object.keys(actions), "log"] });
      if (names.has(rule.name)) throw new ConfigError(`config rules[${i}].name: "${rule.name}" is already the name of another rule`);
      names.add(rule.name);
    });
    return { rules: file.rules, actions };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`config ${(e as Error).message}`);
  }
}

/** The config file's `views:`, validated (ConfigError naming the path of a bad key). */
function viewsOf(file: ConfigFile): unknown[] {
  if (file.views === undefined || file.views === null) return [];
  if (!Array.isArray(file.views)) throw new ConfigError("config views: must be a list of views");
  if (file.views.length > limits.viewsMax) throw new ConfigError(`config views: at most ${limits.viewsMax} views`);
  const names = new Set<string>();
  file.views.forEach((def, i) => {
    let name: string;
    try {
      name = parseView(def, { path: `views[${i}]` }).name;
    } catch (e) {
      throw new ConfigError(`config ${(e as Error).message}`);
    }
    if (names.has(name)) throw new ConfigError(`config views[${i}].name: "${name}" is already the name of another view`);
    names.add(name);
  });
  return file.views;
}

/**
 * The config file's `pii:` with WEIR_PII_KEY: hash mode needs the key (from
 * the environment, so it is not written beside the config), mask mode
 * ignores it. Absent `pii:` (or one listing no key and no detector): nothing
 * is scrubbed, at the cost of one null check per event.
 */
function piiOf(def: unknown, key: string | undefined): PiiSettings | undefined {
  if (def === undefined || def === null) return undefined;
  const r = piiSchema.safeParse(def);
  if (!r.success) throw new ConfigError(`config pii.${issueText(r.error.issues[0], def, "")}`);
  const { keys, detect, mode } = r.data;
  if (keys.length === 0 && detect.length === 0) return undefined;
  if (mode === "hash" && key === undefined) {
    throw new ConfigError("config WEIR_PII_KEY: required when pii.mode is hash (the HMAC key sensitive values are hashed with); set it, or use pii.mode: mask");
  }
  return { keys, detect, mode, key: mode === "hash" ? key! : "" };
}

/** The config file's `dashboard:`, validated (ConfigError naming the path); without one, the demo's or none. */
function dashboardOf(def: unknown, demo: boolean): DashboardDef {
  if (def === undefined || def === null) return demo ? demoDashboard() : emptyDashboard;
  const got = parseDashboard(def);
  if ("error" in got) throw new ConfigError(`config ${got.error}`);
  return got.def;
}

/** The config file's `anomalies:`, validated (ConfigError naming the path of a bad key). */
function anomaliesOf(file: ConfigFile): AnomalyKnobRule[] {
  try {
    return parseAnomalyKnobs(file.anomalies);
  } catch (e) {
    if (e instanceof AnomalyKnobError) throw new ConfigError(`config ${e.message}`);
    throw e;
  }
}

/** The config file's `metric_views:` (a list of {name, sql, description}), each shape-checked; DuckDB checks the SQL at start. */
function metricViewsOf(list: unknown): MetricViewDef[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new ConfigError("config metric_views: must be a list of {name, sql}");
  if (list.length > limits.metricViewsMax) throw new ConfigError(`config metric_views: at most ${limits.metricViewsMax} (metricViewsMax)`);
  const names = new Set<string>();
  return list.map((def, i) => {
    const r = metricViewSchema.safeParse(def);
    if (!r.success) throw new ConfigError(`config metric_views[${i}].${issueText(r.error.issues[0], def, "")}`);
    if (names.has(r.data.name)) throw new ConfigError(`config metric_views[${i}].name: "${r.data.name}" is already the name of another metric view`);
    names.add(r.data.name);
    return r.data;
  });
}

/** A reference table of the config file: `tables: {users: {file: users.csv, key: user_id}}`. */
export interface ConfigTable { name: string; file: string; rows: TableRows }

const tableEntry = z.strictObject({
  file: z.string().min(1),
  key: z.string().refine(isColumnName, "must be a column name (letters, digits and _, not starting with a digit)"),
});

/**
 * The config file's `tables:`, each read from its file (relative to the
 * config file's directory; CSV or JSON by its extension) and validated;
 * a ConfigError names the path: "config tables.users.file: users.csv line 4: ...".
 */
function tablesOf(file: ConfigFile, configPath: string | undefined): ConfigTable[] {
  if (file.tables === undefined || file.tables === null) return [];
  if (typeof file.tables !== "object" || Array.isArray(file.tables)) throw new ConfigError("config tables: must map each table's name to {file, key}");
  const entries = Object.entries(file.tables);
  if (entries.length > limits.tablesMax) throw new ConfigError(`config tables: ${entries.length} tables, at most ${limits.tablesMax} (tablesMax)`);
  return entries.map(([name, def]) => {
    const at = `config tables.${name}`;
    if (!isTableName(name)) throw new ConfigError(`${at}: not a table name (letters, digits and _, not starting with a digit, at most ${limits.tableNameCharsMax} characters)`);
    if (typeof def !== "object" || def === null || Array.isArray(def)) throw new ConfigError(`${at}: must be {file, key}`);
    const parsed = tableEntry.safeParse(def);
    if (!parsed.success) throw new ConfigError(`${at}.${issueText(parsed.error.issues[0], def, "")}`);
    const { file: path, key } = parsed.data;
    const format = formatOfPath(path);
    if (format === null) throw new ConfigError(`${at}.file: "${path}" must end in .csv, .json, .ndjson or .jsonl`);
    const full = resolve(dirname(configPath ?? "."), path);
    let text: string;
    try {
      const bytes = statSync(full).size;
      if (bytes > limits.tableBodyBytesMax) throw new Error(`${bytes} bytes, at most ${limits.tableBodyBytesMax} (tableBodyBytesMax)`);
      text = readFileSync(full, "utf8");
    } catch (e) {
      throw new ConfigError(`${at}.file: cannot read "${path}": ${(e as Error).message}`);
    }
    try {
      return { name, file: path, rows: parseTable(text, format, key, path) };
    } catch (e) {
      if (e instanceof TableError) throw new ConfigError(`${at}.file: ${e.message}`);
      throw e;
    }
  });
}

/**
 * WEIR_INGEST_THREADS=auto. On 2 cores none: measured there, weir already
 * keeps both cores busy under load (its partition workers, the store
 * writer and the JIT share them with the main thread), so moving parsing
 * off the main thread raised neither throughput nor events per CPU-second
 * (BENCHMARKS.md "Ingest threads"). With more cores, one per two beyond
 * the first two: not measured on this machine.
 */
function autoIngestThreads(): number {
  const cores = availableParallelism();
  return cores <= 2 ? 0 : Math.min(limits.ingestThreadsMax, Math.floor((cores - 2) / 2));
}

/** What the config file holds: settings (as environment values), and the rules, actions and anomaly knobs as written. */
interface ConfigFile { settings: Record<string, string>; rules?: unknown; actions?: unknown; anomalies?: unknown; tables?: unknown; views?: unknown; metric_views?: unknown; pii?: unknown; dashboard?: unknown }

/**
 * The config file holds the same settings in lower case without the
 * prefix: {"partitions": 4, "windows": "10s"}; and `rules:` and `actions:`
 * (API.md "Rules and actions"), `anomalies:` (anomaly-knobs.ts) and
 * `tables:` (tablesOf).
 */
function readConfigFile(path: string | undefined): ConfigFile {
  if (!path) return { settings: {} };
  const yaml = /\.ya?ml$/i.test(path);
  let json: unknown;
  try {
    const text = readFileSync(path, "utf8");
    json = yaml ? Bun.YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config WEIR_CONFIG: cannot read "${path}": ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`config WEIR_CONFIG: "${path}" must hold ${yaml ? "a YAML mapping" : "a JSON object"}`);
  }
  const out: ConfigFile = { settings: {} };
  for (const [k, val] of Object.entries(json)) {
    if (k === "rules" || k === "actions" || k === "anomalies" || k === "tables" || k === "views" || k === "metric_views" || k === "pii" || k === "dashboard") {
      out[k] = val;
      continue;
    }
    const envKey = "WEIR_" + k.toUpperCase();
    if (!envKeys.includes(envKey as EnvKey) || envKey === "WEIR_CONFIG") {
      const meant = closestSetting(envKey);
      throw new ConfigError(`config ${path}: unknown key "${k}"${meant === null || meant === "WEIR_CONFIG" ? "" : ` (did you mean "${meant.slice(5).toLowerCase()}"?)`}`);
    }
    out.settings[envKey] = String(val);
  }
  return out;
}
