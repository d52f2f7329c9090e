/**
 * Every bound in weir, in one place, units last. Config values that a user
 * may change (body size, series count, lateness) live in config.ts with
 * these as defaults; the relations between them are asserted at load.
 */
import { strict as assert } from "node:assert";

export const limits = {
  // Events (API.md "Events").
  nameCharsMax: 128, // an event's name; longer: the event is refused, 400 `name: must be 1–128 characters`
  tagsMax: 16, // tags on one event; more: refused, `tags: at most 16 entries`
  tagKeyCharsMax: 64, // a tag key; longer: refused, `tags.<key>: key must match … and be ≤ 64 characters`
  tagValueCharsMax: 256, // a tag value; longer: refused, `tags.<key>: over 256 characters`
  idCharsMax: 128, // an event id; longer: refused, `id: must be a string of 1–128 characters`
  propsBytesMax: 4 * 1024, // an event's props, JSON-encoded; more: refused, `props: over 4096 bytes encoded`

  // Sensitive values (config `pii:`, src/actors/pii.ts).
  piiKeysMax: 64, // keys one `pii.keys` lists
  piiKeyCharsMin: 16, // WEIR_PII_KEY's least length: a short HMAC key can be guessed
  piiTokenCacheMax: 65_536, // values whose token a scrubber remembers (per thread); cleared when full

  // Ingest.
  dedupeIdsMax: 1_000_000, // event ids held for WEIR_DEDUPE_WINDOW; past it the oldest go early (counted)
  dedupeIndexFlushMs: 1_000, // the ids added since are appended to the raw log's de-duplication index this often (off the request path): start-up re-reads at most about this much of the log for ids
  dedupeIndexSlackFactor: 2, // the index file is rewritten as one base when it holds more than this many times the ids held (expired ones add up), plus dedupeIndexSlackBytes
  dedupeIndexSlackBytes: 1024 * 1024, // see dedupeIndexSlackFactor: a small index is not rewritten for every few expired ids
  dedupeIndexBaseMs: 10_000, // a new base of the de-duplication index (used in place at start-up) at least this often: start-up puts back at most about this long's ids one by one (the deltas after it)
  dedupeIndexBuildSliceIds: 65_536, // a base's table is built this many ids per turn of the event loop (about 1 ms): requests wait at most one slice
  bodyBytesMaxDefault: 8 * 1024 * 1024, // WEIR_MAX_BODY's default: a request body, as sent or once decompressed; more: 413 `body: over WEIR_MAX_BODY`
  eventsPerRequestMax: 100_000, // events in one request or message; more: 413 `body: over 100000 events`
  errorsListedMax: 100, // per-request error list in a 202/400 body
  seriesMaxDefault: 100_000, // WEIR_MAX_SERIES's default: distinct series; a new one past it is refused per event (`series_limit`), the known ones keep flowing
  seriesMaxCeiling: 10_000_000, // WEIR_MAX_SERIES at most
  newSeriesPerSecDefault: 5_000, // WEIR_NEW_SERIES_RATE's default: new series registered per second; past it (after a burst) an event of a new series is refused (series_rate), known series keep flowing
  newSeriesBurstSeconds: 10, // the new-series budget holds this many seconds of WEIR_NEW_SERIES_RATE (a fresh start of 50,000 series at the default) // WEIR_MAX_SERIES's default: distinct series; a new one past it is refused per event (`series_limit`), the known ones keep flowing
  signaturesPerSeriesMax: 2, // ingest's signature → series id map holds this many per allowed series (tag orders); cleared when full
  retryAfterSeconds: 1, // Retry-After on a 429/503 when a queue is full
  memoryBytesMaxDefault: 4 * 2 ** 30, // WEIR_MEMORY_MAX's default: past this RSS ingest answers 503 + Retry-After before reading a body
  memoryRetryAfterSeconds: 5, // Retry-After while over WEIR_MEMORY_MAX (memory frees as the rings drain and the store catches up)
  ringShedFraction: 0.9, // a partition's input ring this full: ingest answers 503 before reading a body (the request would most likely not fit)
  rssSampleMs: 100, // RSS is read at most this often on the ingest path // Retry-After on a 429/503 when a queue is full

  // Rings between threads.
  ringBytesDefault: 8 * 1024 * 1024, // WEIR_RING_BYTES's default: a partition's input ring; full: ingest answers 503 + Retry-After, nothing of the request taken
  ringMessageBytesMax: 2 * 1024 * 1024, // one message on a ring (a batch is cut to fit)
  outRingBytesDefault: 4 * 1024 * 1024, // a partition's output ring; full: the worker waits (its input backs up, then ingest answers 503)
  outMessagesPerTurnMax: 4, // a partition's output messages (≤ 4,096 rows each) the main thread takes per event-loop turn
  batchEventsMax: 16_384, // events in one columnar batch on a ring
  ruleSweepMs: 1_000, // how often (of the partition's tick clock) rule instances are checked for silences
  seriesMessageBytesMax: 256 * 1024, // a request's new series for one partition travel to its worker in ring messages of at most this (several if more)
  ringBytesMin: 64, // smallest data area Ring.create accepts (rounded up to a power of two)
  ringBytesMax: 1 << 30, // byte counters are int32 and compared mod 2^32

  // Partitions and supervision.
  partitionsMax: 64, // WEIR_PARTITIONS at most
  heartbeatIntervalMs: 250, // a worker beats this often
  heartbeatTimeoutMs: 5_000, // a worker silent this long is restarted from its checkpoint
  restartBackoffBaseMs: 100, // first restart delay, doubled per restart in the window
  restartBackoffMaxMs: 5_000, // longest restart delay
  restartsMax: 5, // within restartWindowMs, then the partition is failed
  restartWindowMs: 60_000, // restarts counted over this window: past the budget the partition is failed (503 for its series, /ready names it)
  workerTickMs: 50, // a partition's wall-clock tick (the quiet rule), at most this often
  backgroundThreadNice: 5, // partition workers and the store writer run this much nicer than the main thread (thread-priority.ts)
  supervisedChildrenMax: 256, // worker threads one supervisor watches (heartbeat slots)
  supervisorStopTimeoutMs: 5_000, // graceful stop, then terminate()
  childErrorCharsMax: 1_000, // a child's lastError / event reason is cut to this

  // Windows.
  windowSpecsMax: 8, // window specs in WEIR_WINDOWS
  windowSizeMsMax: 24 * 3600 * 1000, // the longest window
  panesPerSeriesMax: 4096, // open panes per series; past it its oldest windows close early
  panesPerWindowMax: 2048, // panes one window may span (size / pane); half of panesPerSeriesMax leaves room for lateness
  sketchExactMax: 100, // values a window keeps exactly before its percentiles come from the sketch
  sketchRelativeAccuracy: 0.005, // the quantile sketch's relative error bound
  sketchBinsMax: 2048, // bins per sketch; past it the lowest bins are merged (percentiles above stay within the bound)
  sketchMergeExactPartsMax: 16, // exact sketches whose merged quantiles stay exact (sorted merge); more are merged into a sketch
  trendPanesPerSeriesMax: 4096, // trend actor's ring per series: window panes + lateness panes (60s/10s, 2 s: 7)
  latenessMsDefault: 2000, // WEIR_LATENESS's default (config.ts); the trend actor's when not given one
  rollupsMax: 4, // downsampled resolutions merged from the base windows (the engine uses 1m and 1h)
  rollupSizeMsMax: 24 * 3600 * 1000, // the longest rollup (1h)
  delayPeriodMs: 5 * 60_000, // a series' arrival delay is estimated over its last one to two periods of this (src/actors/delay.ts)
  delayWarmupEvents: 8, // until a series has sent this many events its jitter is unknown: the quiet rule waits 2 × its largest delay

  // Store and queries.
  storeFlushMs: 100, // new series are written this often (results go with their partition's checkpoint)
  checkpointRowsMax: 50_000, // output rows after which a partition checkpoints before its interval (bounds a commit's rows)
  checkpointBytesPerSecondMax: 8 * 1024 * 1024, // interval checkpoints of a partition snapshot this many bytes per second at most
  storeCacheBytes: 64 * 1024 * 1024, // the writer connection's page cache: 3× faster inserts of a mass close than SQLite's 2 MB
  tickSeriesMax: 1_000, // series one slice of a quiet close (a wall-clock tick's or a batch's) closes before the worker beats, flushes their results and goes on: about 15 ms of CPU (at load average 12-18 a worker got 3-5 % of a core: 1-2.5 s between beats for 20-130 ms of CPU)
  snapshotSeriesPerSlice: 1_000, // series a partition worker snapshots (or restores) between two heartbeats (50,000 series took 0.3-2 s in one piece)
  checkpointBytesMax: 1 << 30, // one partition's snapshot; past it the worker fails (restarted, then its partition failed: 503 for its series), not the process
  storeStopTimeoutMs: 30_000, // at stop, how long the last commits may take on the store writer before they are left to replay
  parseInFlightPerThreadMax: 16, // request bodies waiting on one ingest thread at most (parse-pool.ts); more are 503
  parseInFlightBytesMax: 256 * 2 ** 20, // bytes of bodies waiting on the ingest threads at most
  parseThreadRestartsMax: 5, // ingest threads replaced within a minute at most; past it ingest is refused (503) until restart
  ingestThreadsMax: 64, // WEIR_INGEST_THREADS at most
  groupCommitRequestsMax: 256, // durable profile: requests answered by one fsync at most (more wait for the next)
  workerHeapBytesDefault: 1024 * 1024 * 1024, // WEIR_WORKER_HEAP_MAX: a partition worker over it (after a full GC) is restarted
  workerHeapCheckMs: 250, // how often a partition worker reads its heap size
  diskReserveBytesDefault: 64 * 1024 * 1024, // WEIR_DISK_RESERVE: ingest answers 503 below this much free space
  authFailuresPerWindowMax: 20, // missing or unknown tokens from one address per authFailureWindowMs; past it 429 until the window ends
  authFailureWindowMs: 60_000, // the window authFailuresPerWindowMax counts over
  authFailureAddressesMax: 10_000, // client addresses whose failures are counted at once; past it the oldest is forgotten
  rawBytesMaxDefault: 20 * 2 ** 30, // WEIR_RAW_MAX_BYTES: the raw log's byte budget; past it the oldest segments no replay or dedupe window needs go
  diskCheckMs: 250, // free space is read at most this often
  diskRetryAfterSeconds: 5, // Retry-After when the disk is (nearly) full
  recoveryTimeoutMs: 10 * 60_000, // start-up waits this long for every partition to replay its log
  storePruneMs: 60_000, // retention runs this often
  deadlettersMax: 10_000, // entries listed at /api/v1/deadletters (in memory), oldest overwritten first
  deadletterEventCharsMax: 4096, // a rejected event larger than this as JSON is kept as its JSON, cut
  queryRowsMax: 10_000, // rows one SQL answer holds; more: cut, `truncated: true`
  topWindowsMax: 100_000, // windows one top-k over a from/to range reads (aggregated in SQLite, not held; at this bound 0.1-0.2 s of the main thread over 100-10,000 series, 0.35 s over 100,000, measured); past it a 400 naming this
  seriesListMax: 10_000, // series one /api/v1/series answer lists at most (`limit`)
  // The config file's `dashboard:` (src/http/dashboard-def.ts): what the page charts, gauges and cards by default.
  dashboardChartsMax: 6, // series charted at once: the page's own bound (web/app.js ui.chartsMax) is the same
  dashboardGaugesMax: 12, // gauges in the config's `dashboard:`
  dashboardCardsMax: 12, // KPI cards in the config's `dashboard:`
  dashboardLabelCharsMax: 64, // a gauge's or card's label

  // The lake (src/lake/): Parquet files under <data>/lake and read-only SQL over them (DuckDB).
  lakeQueryRowsMax: 10_000, // rows one POST /api/v1/query answers at most; past it the answer says "truncated": true
  lakeQuerySqlCharsMax: 100_000, // one query's text
  lakeQueriesPerTokenMax: 2, // queries one token (or, without tokens, one client) runs at once; past it 429 + Retry-After
  lakeQueriesMax: 8, // queries running at once, all tokens together; past it 503 + Retry-After
  lakeQueryRetryAfterSeconds: 1, // Retry-After when the SQL concurrency caps are reached
  lakeDuckdbThreads: 1, // DuckDB's threads for SQL: on 2 cores, one left to ingest and the partitions (BENCHMARKS.md "Lake")
  lakeDuckdbMemoryBytes: 512 * 2 ** 20, // DuckDB's memory_limit for SQL and for the lake's maintenance, each
  lakeIntervalMsDefault: 10_000, // WEIR_LAKE_INTERVAL: compaction and the raw tail run this often
  lakeCuratedIntervalMsDefault: 60_000, // WEIR_LAKE_CURATED_INTERVAL: curated tables are written out this often
  lakeDeferMsDefault: 60_000, // WEIR_LAKE_DEFER: while the host's cores are busy a maintenance pass waits, the lake at most this far behind (a burst of up to a minute leaves ingest every core)
  lakeDeferMsMax: 3_600_000, // WEIR_LAKE_DEFER at most: the raw tail waits no longer than this, whatever the load
  lakeDeferIdleShareMin: 0.3, // the host's cores idle at least this share of the last second or two before a tick, or the pass waits (WEIR_LAKE_DEFER): the raw tail costs about half of ingest's CPU an event, and a flat-out HTTP load on 2 cores leaves 17-21 % idle with the lake off
  lakeDeferSampleMs: 1_000, // how often the host's CPU times are sampled for that (the share is over the last one to two samples: a tick right after an idle spell still sees the load)
  lakeRetentionMsDefault: 30 * 86_400_000, // WEIR_RETENTION_LAKE: hours of the raw zone older than this are deleted
  lakeNdjsonChunkRows: 4_096, // rows written to a staging file (or an export stream) per write: bounds memory
  lakeTailChunkRowsMax: 1_048_576, // events one raw tail chunk holds at most: a pass with more writes several (DuckDB holds a chunk's rows in memory until it is written: 24 bytes each, plus ids and props)
  lakeSegmentsPerPassMax: 4, // closed segments one maintenance pass compacts (the rest wait for the next)
  lakeQueryAttemptsMax: 3, // a query that met a file compaction had just replaced runs again, up to this many times in all
  lakeSqlRunningMax: 1, // DuckDB statements (queries, metric-view checks and runs) executing at once; the others wait their turn within WEIR_QUERY_TIMEOUT: with lakeDuckdbThreads each takes a core (BENCHMARKS.md "Lake")
  lakeThreadNice: 10, // DuckDB's pool threads and the lake's maintenance thread run this much nicer than the main thread: below the partition workers (backgroundThreadNice)
  lakeMaterializeTickMs: 1_000, // how often the materialised metric views' schedules are looked at
  lakeMaterializeEveryMsMin: 1_000, // a metric view's `materialize.every` at least this
  lakeMaterializeEveryMsMax: 31 * 86_400_000, // and at most this
  metricViewsMax: 64, // named SQL views (config file and admin API together)
  metricViewNameCharsMax: 64, // a metric view's name
  metricViewSqlCharsMax: 16_384, // a metric view's SQL

  // Live.
  wsClientsMax: 10_000, // live clients (WebSocket and SSE) at once; more: closed with 1013
  wsTopicsPerClientMax: 1_000, // topics one live client subscribes to; more: an error frame naming the bound
  wsPayloadBytesMax: 1024 * 1024, // a WebSocket frame from a client
  wsBackpressureBytesMax: 4 * 1024 * 1024, // a live client's unsent bytes; past it the client is closed with 1013 (slow)
  wsIdleTimeoutSeconds: 120, // a silent WebSocket is closed after this
  wsPendingPerClientMax: 10_000, // results queued for one live client between flushes (conflated per series and window)
  // WebSocket ingest (GET /ws/ingest): frames are 1 MiB at most (wsPayloadBytesMax), like any WebSocket frame.
  wsIngestClientsMax: 1_000, // producer sockets at once; past it the upgrade is 503
  wsIngestFramesInFlightMax: 64, // frames of one socket awaiting their ack; at it the socket stops reading (TCP backpressure)
  wsIngestFramesQueuedMax: 256, // frames read before the pause took hold, past which the socket is closed with 1013
  sseHeartbeatMs: 15_000, // comment line on a quiet Server-Sent Events stream
  statsIntervalMs: 1_000, // the stats topic's period
  fanoutRetainedMax: 20_000, // latest window per spec and series, for new subscribers
  fanoutRetainedSlack: 2_000, // new series past fanoutRetainedMax before the least recently updated are evicted in one go

  // Rules (src/actors/rules/).
  viewsMax: 64, // continuous views held at once (config file and admin API)
  viewNameCharsMax: 48, // a view's name
  viewConditionsMax: 16, // `where` conditions of one view
  viewGroupByMax: 8, // parts of a view's group
  viewSlidesMax: 60, // a sliding view window spans at most this many slides (each event updates that many windows)
  tableMarkersWaitingMax: 64, // reference-table changes queued for a full partition ring; past it a change is 503 (each worker holds the table once, the markers only order it)
  updatesEveryMs: 500, // a partition sends the running values of the open windows live clients asked for (updates:<spec>:<glob>) this often
  updatesPerFlushMax: 10_000, // series whose running values one flush sends at most (the rest at the next)
  viewGroupsMax: 100_000, // open (group, window) aggregates of one partition's views together; past it an event's view update is refused and counted
  viewPartsHoldMsMax: 10_000, // an emit: final view's parts are held in the partition until their window is complete, and handed over at least this often (of its clock) all the same
  viewFrontierEveryMs: 1_000, // a partition says this often how far its views' windows are complete (rules judge a view window once every partition has passed its end)
  viewFinalLagMsMax: 120_000, // a view window waits for a slow or silent series at most this long past its end (its clock) before it is judged; what comes later counts in weir_view_parts_late_total
  viewRuleWindowsPendingMax: 200_000, // view windows merged and not yet judged by the rules; past it the oldest are judged early (counted)
  viewRuleSeriesMax: 100_000, // view series the rules on views follow; past it a new one is not judged (counted in the rule's refused)
  viewDistinctExactMax: 256, // count_distinct is exact up to this many values per group and window, then a HyperLogLog of 2^12 registers (±1.6 %)
  rulesMax: 1_000, // alert rules held at once (config file and admin API together)
  ruleNameCharsMax: 64, // a rule's name
  ruleBodyBytesMax: 64 * 1024, // a rule PUT through the admin API
  ruleExprCharsMax: 1_024, // a rule's expression
  ruleMatchersMax: 16, // tag matchers in one selector
  ruleWindowMsMin: 1_000, // `over` at least
  ruleWindowMsMax: 7 * 86_400_000, // `over` at most: WEIR_MAX_EVENT_AGE's default
  ruleWindowPanesMax: 2_048, // closed windows one instance's rolling `over` aggregate spans (24 B each)
  ruleForMsMax: 7 * 86_400_000, // `for` and `keep_firing_for` at most
  ruleLabelsMax: 16, // labels on a rule
  ruleAdviceCharsMax: 1_024, // a rule's advice text
  ruleActionsMax: 8, // actions one rule names
  ruleInstancesPerRuleMax: 10_000, // series one rule tracks; past it a new series is refused (counted)
  ruleBacktestSeriesMax: 1_000, // series one back-test (POST /api/v1/rules/test) may match; past it a 400 naming this
  ruleBacktestWindowsMax: 100_000, // windows one back-test reads (held at once, ~200 B each; at this bound 0.1-1.3 s of the main thread, measured); past it a 400 naming this
  ruleBacktestBodyBytesMax: 64 * 1024, // a back-test's request body

  // Anomaly knobs (the config file's `anomalies:`, src/actors/anomaly-knobs.ts).
  anomalyKnobsMax: 256, // entries; each new series tries them in order, once, when its partition learns its name
  anomalyMatchCharsMax: 960, // an entry's selector, parsed where a rule's anomaly(...) takes one
  anomalyZMin: 1, // warning |z| at least: below it most values of a quiet series would alert
  anomalyZMax: 100, // critical |z| at most: a prediction error of 100 spreads is already past any reading of the tails
  anomalyBaselineValuesMin: 10, // the spread rests on at least this many errors (at warning 3 it is widened by 25 % for its own uncertainty)
  anomalyBaselineValuesMax: 100_000, // spread gain 2e-5: at a value a second the baseline takes about a day to follow a new noise level
  anomalySeasonValuesMax: 300, // a series' cycle (`season`) in values at most: its strength ring is this many bytes (+ 11), kept for every series (a day of 5-minute values is 288; a longer ring would cost every series its bytes)
  anomalyCooldownValuesMax: 100_000, // `cooldown_values` at most
  anomalyCooldownGrowthMax: 10, // `cooldown_growth` at most: at 10 a series alerting every few values waits ~10 × its cooldown per extra recent alert

  // Reference tables (src/actors/views/table.ts, src/engine/table-book.ts): joined by the views, held whole by every partition worker.
  tablesMax: 16, // tables held at once (config file and admin API together)
  tableNameCharsMax: 64, // a reference table's name
  tableRowsMax: 100_000, // rows of one table (a PUT, a PATCH's result, a config file's table)
  tableColumnsMax: 32, // columns of one table, its key included
  tableCharsMax: 8 * 2 ** 20, // characters of one table's values, keys included (held as UTF-16: 16 MiB, plus the Map's own)
  tableBodyBytesMax: 16 * 2 ** 20, // a PUT or PATCH body, or a config file's table file (JSON repeats every column name: twice the values)
  tableRowsListedDefault: 1_000, // rows GET /api/v1/tables/{name} answers when no limit is given (at most queryRowsMax)

  // NATS (src/nats/).
  natsConnectTimeoutMs: 5_000, // the handshake with a server, per attempt
  natsReconnectWaitMs: 250, // between attempts to one server: a NATS that returns is found within this (plus jitter)
  natsReconnectJitterMs: 100, // so several weir processes do not dial in step
  natsPingIntervalMs: 5_000, // a half-open link (no RST, e.g. a dead host) is noticed after natsPingsOutstandingMax of these
  natsPingsOutstandingMax: 2, // unanswered pings before the NATS link counts as lost
  natsApiTimeoutMs: 5_000, // a JetStream API request (stream info, add) before it fails
  natsIngestDuplicateWindowMsDefault: 2 * 60_000, // JetStream's own default: Nats-Msg-Id de-duplicated this long by the stream
  natsIngestMaxAgeMsDefault: 7 * 86_400_000, // WEIR_MAX_EVENT_AGE's default: an event older than that is rejected anyway
  natsAckPendingMax: 10_000, // messages taken and not yet acknowledged (their checkpoint not committed): JetStream stops delivering past it
  natsPullBatchMax: 256, // messages one pull asks for
  natsReadExpiresMs: 2_000, // an ordered read's pull lasts this long, its heartbeats at half: two missed and it is made again (ordered-read.ts)
  natsMaxDeliver: 10, // deliveries of one message at most (a transient failure is retried this often)
  natsAckWaitMs: 60_000, // a message not acknowledged this long after delivery comes again
  natsRetryDelayMsMax: 5_000, // back-off of a message that failed transiently (doubling from 100 ms)
  natsPublishTimeoutMs: 2_000, // HTTP ingest in NATS mode: JetStream's acknowledgement of a publish, else 503
  natsLeaseMs: 10_000, // a partition's lease lasts this long unless renewed (leases.ts); must exceed the processes' clock skew
  natsLeaseRenewMs: 3_000, // the owner renews this often (at most a third of the lease)
  natsShareBytesMax: 512 * 1024, // a share of a message for one partition (repartition.ts), under NATS' default max_payload of 1 MiB
  natsSplitsInFlightMax: 64, // messages split whose shares JetStream has not acknowledged yet (one process)
  natsFeedPendingMax: 100_000, // messages taken from a partition's subject whose checkpoint is not committed yet (partition-feed.ts)
  simPublishesInFlightMax: 64, // the demo's simulators in NATS mode: batches published and not yet acknowledged
  natsFloorEveryMs: 250, // how often the receive time of the oldest message still in NATS is measured (upstream-floor.ts): quiet closes wait for it
  natsFloorLagMsMax: 60_000, // the quiet rule waits for a message still in NATS (or for NATS itself) this long at most
  natsResultsWaitingMax: 100_000, // results computed while the link to NATS is down, kept to publish once it is back (~300 B each)
  natsResultsFlushMs: 250, // how often those are tried
  replicaBatchMax: 2_000, // results copied from WEIR_OUT (results-replica.ts) per store transaction
  clusterHandoffWaitMs: 5_000, // a partition handed to a joiner: its last checkpoint is awaited this long at most (3 checkpoint intervals if less) before the lease goes; the process's quiet rule waits meanwhile
  natsLeaseMsMin: 1_500, // WEIR_NATS_LEASE's least: three renewals of natsLeaseRenewMsMin fit
  natsLeaseRenewMsMin: 500, // the shortest lease renewal period

  // Actions (src/actions/): rule transitions handed to webhooks, the log and NATS.
  actionsMax: 64, // actions in one config
  actionsWaitingMax: 10_000, // committed transitions held for the actions before they are started, or handed over from an earlier run at start
  ruleSeriesListedMax: 100, // series a rule's selector picks, listed with the rule (the dashboard's threshold lines)
  ruleInstancesListedMax: 10_000, // a rule's instances the main thread lists (GET /api/v1/rules); resolved ones go first past it
  actionNameCharsMax: 64, // an action's name
  actionQueueAlertsDefault: 1_000, // alerts waiting per action; past it the oldest waiting is dropped (counted)
  actionQueueAlertsMax: 100_000, // transitions waiting in one action's queue; more: dropped and counted (weir_action_deliveries_total, outcome dropped)
  actionTimeoutMsDefault: 5_000, // one webhook POST, until its answer's status
  actionTimeoutMsMax: 60_000, // the longest timeout an action may set
  actionRetriesDefault: 5, // re-sends of one alert after its first attempt
  actionRetriesMax: 20, // retries an action may set
  actionBackoffBaseMs: 200, // the first retry waits 100–200 ms (equal jitter), doubling from there
  actionBackoffMaxMs: 30_000, // the longest back-off between an action's retries
  actionRetryAfterMsMax: 5 * 60_000, // a longer Retry-After from a webhook is cut to this
  actionBreakerFailuresDefault: 5, // consecutive unanswered attempts that open an action's breaker
  actionBreakerFailuresMax: 1_000, // failures in a row that open an action's circuit breaker at most
  actionBreakerOpenMsDefault: 30_000, // an open breaker sends nothing this long, then one probe
  actionBreakerOpenMsMax: 10 * 60_000, // the longest an action's breaker may stay open
  actionCloseTimeoutMs: 5_000, // at stop, how long queues may drain before what is left counts as failed
  actionErrorCharsMax: 300, // a webhook's error answer kept as lastError, cut to this
} as const;

assert(limits.ringMessageBytesMax * 2 <= limits.ringBytesDefault, "a ring holds at least two maximal messages");
// A full columnar batch (id u32 + ts f64 + value f64 + header) must fit in one ring message.
assert(limits.batchEventsMax * 20 + 64 * 1024 <= limits.ringMessageBytesMax, "a maximal batch fits one ring message");
assert(16 + 3 * limits.nameCharsMax + limits.tagsMax * (10 + 3 * (limits.tagKeyCharsMax + limits.tagValueCharsMax)) + 64 <= limits.seriesMessageBytesMax, "a series row fits one series message");
assert(limits.seriesMessageBytesMax <= limits.ringMessageBytesMax);
assert(limits.ringBytesDefault <= limits.ringBytesMax && limits.outRingBytesDefault <= limits.ringBytesMax);
assert(limits.ringBytesMin <= limits.outRingBytesDefault, "the default out-ring is not below the minimum");
assert(limits.ringBytesMax <= 2 ** 30, "ring byte counters must not overflow their int32 difference");
assert(limits.heartbeatIntervalMs * 4 <= limits.heartbeatTimeoutMs, "several beats fit in the timeout");
assert(limits.panesPerWindowMax * 2 <= limits.panesPerSeriesMax, "a series holds its widest window twice over");
assert(limits.panesPerWindowMax * 2 <= limits.trendPanesPerSeriesMax, "a trend ring holds its widest window twice over");
assert(limits.dedupeIndexSlackFactor >= 1, "the index is rewritten only once it holds more than one base");
assert(limits.dedupeIndexBaseMs >= limits.dedupeIndexFlushMs, "a base is rewritten no more often than deltas are appended");
assert(limits.dedupeIndexBuildSliceIds > 0, "a base's table is built in slices of at least one id");
assert(limits.sketchExactMax >= 1 && limits.sketchRelativeAccuracy <= 0.01, "percentiles within 1 %");
assert(limits.ruleWindowMsMin <= limits.ruleWindowMsMax && limits.ruleWindowMsMax <= limits.natsIngestMaxAgeMsDefault, "a rule window fits the events kept");
// An expression can name a full-length metric with two full-length matchers.
assert(limits.ruleExprCharsMax >= limits.nameCharsMax + 2 * (limits.tagKeyCharsMax + limits.tagValueCharsMax + 6) + 64);
// One rule's rolling state at worst (every instance over its longest window): 24 B a window.
assert(limits.ruleInstancesPerRuleMax * limits.ruleWindowPanesMax * 24 <= 512 * 2 ** 20, "one rule's rolling state ≤ 512 MiB");
assert(limits.ruleBacktestSeriesMax <= limits.ruleInstancesPerRuleMax, "a back-test's rule holds an instance for every series it reads");
assert(limits.ruleBacktestWindowsMax >= limits.ruleWindowPanesMax, "a back-test reads at least one rolling span of one series");
assert(limits.topWindowsMax >= limits.ruleBacktestWindowsMax, "a ranking, aggregated in the store, reads at least what a back-test holds");
// A rule at its longest (expression, advice, labels), every character escaped as \uXXXX, fits a back-test's body.
assert(6 * (limits.ruleExprCharsMax + limits.ruleAdviceCharsMax + limits.ruleLabelsMax * (limits.tagKeyCharsMax + limits.tagValueCharsMax)) <= limits.ruleBacktestBodyBytesMax);
// An anomaly knob's selector stands inside anomaly(...) >= warning when it is parsed.
assert(limits.anomalyMatchCharsMax + "anomaly() >= warning".length <= limits.ruleExprCharsMax, "a knob's selector fits a rule expression");
assert(1 <= limits.anomalyZMin && limits.anomalyZMin < limits.anomalyZMax && 2 <= limits.anomalyBaselineValuesMin && limits.anomalyBaselineValuesMin < limits.anomalyBaselineValuesMax);
assert(limits.tablesMax * limits.tableCharsMax * 2 <= 256 * 2 ** 20, "every table at its bound holds at most 256 MiB of text (one copy)");
assert(limits.tableCharsMax <= limits.tableBodyBytesMax, "a body at its bound can fill a table");
assert(limits.tableRowsListedDefault <= limits.queryRowsMax);
assert(limits.wsIngestFramesQueuedMax >= limits.wsIngestFramesInFlightMax, "a paused ingest socket may still deliver frames read before the pause");
assert(limits.restartBackoffBaseMs <= limits.restartBackoffMaxMs);
assert(limits.supervisedChildrenMax >= limits.partitionsMax, "every partition can have its own worker");
assert(limits.heartbeatTimeoutMs <= limits.supervisorStopTimeoutMs, "a stop waits at least one heartbeat timeout");
assert(limits.natsReconnectWaitMs + limits.natsReconnectJitterMs <= 1_000, "a returning NATS is found within a second");
assert(limits.natsPingIntervalMs * limits.natsPingsOutstandingMax <= 60_000, "a dead NATS link is noticed within a minute");
assert(limits.natsIngestDuplicateWindowMsDefault <= limits.natsIngestMaxAgeMsDefault, "JetStream refuses a duplicate window longer than max_age");
assert(limits.natsAckWaitMs >= 10 * limits.storeFlushMs, "a message is not redelivered while its checkpoint is normally on its way");
assert(limits.natsFloorLagMsMax >= limits.natsMaxDeliver * limits.natsRetryDelayMsMax, "a message retried with back-off is waited for until its last delivery");
assert(limits.natsLeaseRenewMs * 3 <= limits.natsLeaseMs, "a lease survives two missed renewals");
assert(limits.actionQueueAlertsDefault <= limits.actionQueueAlertsMax && limits.actionRetriesDefault <= limits.actionRetriesMax);
assert(limits.actionTimeoutMsDefault <= limits.actionTimeoutMsMax && limits.actionBackoffBaseMs <= limits.actionBackoffMaxMs);
assert(limits.actionBreakerOpenMsDefault <= limits.actionBreakerOpenMsMax && limits.actionBreakerFailuresDefault <= limits.actionBreakerFailuresMax);
assert(limits.actionTimeoutMsDefault <= limits.actionCloseTimeoutMs, "a stop waits for at least one webhook attempt in flight");
assert(limits.actionBackoffMaxMs <= limits.actionRetryAfterMsMax, "a server's Retry-After may ask for at least our own longest back-off");
assert(limits.lakeQueryRowsMax === limits.queryRowsMax, "SQL answers as many rows as the other query routes (API.md: at most 10,000)");
assert(limits.lakeQueriesPerTokenMax <= limits.lakeQueriesMax, "one token can run its share");
assert(limits.lakeCuratedIntervalMsDefault >= limits.lakeIntervalMsDefault, "curated snapshots are the heavier pass: no more often than compaction");
assert(limits.metricViewSqlCharsMax <= limits.lakeQuerySqlCharsMax, "a metric view is a query");
assert(limits.lakeSqlRunningMax <= limits.lakeQueriesMax, "admitted queries can all run in turn");
assert(limits.lakeThreadNice >= limits.backgroundThreadNice, "the lake yields to the partitions, not they to it");
assert(limits.lakeTailChunkRowsMax * 24 <= limits.lakeDuckdbMemoryBytes / 8, "a raw tail chunk's rows (24 bytes each, ids and props on top) take a small part of DuckDB's memory");
assert(limits.lakeMaterializeEveryMsMin >= limits.lakeMaterializeTickMs, "a schedule is looked at at least once a period");
