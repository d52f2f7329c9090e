/**
 * The engine's Prometheus metrics (API.md "Operations"), named once here.
 */
import type { IngestOutcome } from "../actors/ingest.ts";
import type { Engine } from "./engine.ts";
import { registerProcessMetrics } from "../runtime/process-metrics.ts";
import { Metrics, type Counter, type Histogram } from "../runtime/metrics.ts";

export interface EngineMetrics {
  registry: Metrics;
  ingested: Counter;
  rejected: Counter;
  late: Counter;
  duplicate: Counter;
  windowsEmitted: Counter;
  ruleTransitions: Counter;
  overloaded: Counter;
  e2eLatency: Histogram;
  countRejects(o: IngestOutcome): void;
}

const latencyBucketsSeconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createEngineMetrics(engine: Engine): EngineMetrics {
  const m = new Metrics();
  const rejected = m.counter("weir_events_rejected_total", "Events refused, by reason");
  const out: EngineMetrics = {
    registry: m,
    ingested: m.counter("weir_events_ingested_total", "Events accepted (202) and made durable"),
    rejected,
    late: m.counter("weir_events_late_total", "Events that arrived after their window closed"),
    duplicate: m.counter("weir_events_duplicate_total", "Re-sent events recognised by id"),
    windowsEmitted: m.counter("weir_windows_emitted_total", "Window results closed and published"),
    ruleTransitions: m.counter("weir_rule_transitions_total", "Alert rule transitions published (pending, firing, resolved, inactive)"),
    overloaded: m.counter("weir_ingest_overloaded_total", "Requests refused with 503 because a queue was full"),
    e2eLatency: m.histogram("weir_e2e_latency_seconds", "From the ingest of the event that closed a window to its delivery to a live client", latencyBucketsSeconds),
    countRejects(o) {
      for (const [reason, n] of Object.entries(o.reasons)) rejected.inc(n, { reason });
    },
  };
  m.gauge("weir_series", "Series known", () => engine.registry.size);
  m.gauge("weir_queue_depth", "Bytes waiting on each partition's input ring", () =>
    Array.from({ length: engine.cfg.partitions }, (_, p) => [{ partition: String(p) }, engine.queueDepthBytes(p)]));
  m.gauge("weir_actor_restarts_total", "Worker restarts by the supervisor, by actor", () =>
    engine.supervisor.status().map((s) => [{ actor: s.id }, s.restarts]), "counter");
  const perPartition = (f: (p: number) => number) => () =>
    Array.from({ length: engine.cfg.partitions }, (_, p) => [{ partition: String(p) }, f(p)] as [Record<string, string>, number]);
  m.gauge("weir_events_replayed_total", "Events replayed from the raw log into a partition's state (at start and after a worker restart)",
    perPartition((p) => engine.replayedEvents(p)), "counter");
  m.gauge("weir_view_updates_refused_total", "Events whose continuous-view update was refused: limits.viewGroupsMax (view, group, window) aggregates were open in the partition",
    perPartition((p) => engine.viewUpdatesRefused(p)), "counter");
  m.gauge("weir_view_parts_late_total", "Parts of view windows that came after the rules judged the window (merged into the stored window, not judged again)",
    () => engine.viewRules?.stats().partsLate ?? 0, "counter");
  m.gauge("weir_view_rules_lag_seconds", "How far behind the wall clock the rules on views have judged the view windows (0 without such rules)", () => {
    const to = engine.viewRules?.active === true ? engine.viewRules.stats().judgedTo : NaN;
    return Number.isFinite(to) ? Math.max(0, (Date.now() - to) / 1000) : 0;
  });
  m.gauge("weir_view_windows_judged_early_total", "View windows the rules judged before every partition had completed them (limits.viewRuleWindowsPendingMax were waiting)",
    () => engine.viewRules?.stats().judgedEarly ?? 0, "counter");
  m.gauge("weir_checkpoints_total", "Checkpoints taken by a partition's workers", perPartition((p) => engine.checkpointsTaken(p)), "counter");
  m.gauge("weir_raw_log_pruned_bytes_total", "Raw-log bytes deleted, by reason: retention (past WEIR_RETENTION_RAW), budget (over WEIR_RAW_MAX_BYTES)", () =>
    [[{ reason: "retention" }, engine.rawPruned.retention], [{ reason: "budget" }, engine.rawPruned.budget]], "counter");
  m.gauge("weir_lake_segments_lost_total", "Raw-log segments WEIR_RAW_MAX_BYTES deleted before the lake had compacted them (their events are not in the lake)", () => engine.rawPruned.lakeLost, "counter");
  m.gauge("weir_raw_log_over_budget_bytes", "Raw-log bytes over WEIR_RAW_MAX_BYTES that replay or the de-duplication window still needs", () => engine.rawPruned.over);
  m.gauge("weir_raw_log_fsyncs_total", "fsync(2) calls on the raw log (WEIR_DURABILITY=durable: one per group of requests)", () => engine.rawLogSyncs, "counter");
  m.gauge("weir_dedupe_ids", "Event ids held for de-duplication", () => engine.dedupe.size);
  m.gauge("weir_dedupe_index_fallbacks_total", "Start-ups of this process whose de-duplication index was torn, corrupt or past the raw log's end (ids read from more of the log)",
    () => (["torn", "corrupt", "ahead"].includes(engine.recovered?.dedupeIndex ?? "") ? 1 : 0), "counter");
  m.gauge("weir_dedupe_index_write_errors_total", "Writes of the de-duplication index that failed (logged; start-up reads more of the raw log)", () => engine.dedupeIndexWriteErrors, "counter");
  m.gauge("weir_dedupe_evicted_total", "Ids forgotten before WEIR_DEDUPE_WINDOW passed because limits.dedupeIdsMax was reached", () => engine.dedupe.evicted, "counter");
  m.gauge("weir_deadletters", "Entries in the dead-letter list (newest limits.deadlettersMax kept)", () => engine.deadletters.size);
  m.gauge("weir_ws_clients", "Live WebSocket and SSE clients", () => engine.fanout.size);
  m.gauge("weir_ws_closed_total", "Live clients closed with 1013, by reason: slow (send buffer over its bound), full (too many clients)", () =>
    Object.entries(engine.fanout.closed).map(([reason, n]) => [{ reason }, n] as [Record<string, string>, number]), "counter");
  m.gauge("weir_rules", "Alert rules held (config file and admin API)", () => engine.rules?.defs().length ?? 0);
  m.gauge("weir_action_deliveries_total", "Rule transitions handed to actions, by action and outcome: delivered, failed (refused or retries spent), dropped (its queue was full)",
    () => engine.rules?.deliveryCounters() ?? [], "counter");
  m.gauge("weir_action_queue_depth", "Transitions waiting in each action's queue", () =>
    (engine.rules?.actionStatus() ?? []).map((a) => [{ action: a.name }, a.queueDepth] as [Record<string, string>, number]));
  m.gauge("process_resident_memory_bytes", "Resident set size", () => process.memoryUsage.rss());
  m.gauge("process_heap_bytes", "JavaScript heap in use", () => process.memoryUsage().heapUsed);
  registerProcessMetrics(m, engine.loopLag);
  return out;
}
