/**
 * The narrow interfaces HTTP reaches the engine through (DESIGN.md
 * "Runtime"): ingest, the read model, live pushes and operations. Routes
 * import these types and nothing else of the engine, so a route test can
 * hand createApp() small stand-ins and call app.request() without threads
 * or SQLite.
 */
import type { BodyFormat } from "../actors/ingest-body.ts";
import type { Fanout } from "../actors/fanout.ts";
import type { EngineOutcome } from "./ingest-path.ts";
import type { ActionStatus } from "../actions/action.ts";
import type { RuleEntry } from "./rule-book.ts";
import type { ViewEntry } from "./view-book.ts";
import type { TableBody, TablePage, TableSummary } from "./table-book.ts";

export type { ReadModel, SeriesEntry, TopAnswer, TopQuery, WindowRow } from "./read-model.ts";
export type { EngineOutcome } from "./ingest-path.ts";
export type { RuleEntry } from "./rule-book.ts";
export type { ViewEntry } from "./view-book.ts";
export type { TableBody, TablePage, TableSummary } from "./table-book.ts";
export type { AlertRecord } from "../actors/store.ts";

/** Takes one request body; rejects with BodyError, TooLargeError or OverloadedError (mapped by http/errors.ts). */
export interface IngestPort {
  ingestBytes(bytes: Uint8Array, format: BodyFormat): Promise<EngineOutcome>;
  /**
   * Throws an OverloadedError (429/503 + Retry-After) when a request would be
   * refused whatever its body holds, so the route refuses it before reading
   * the body; optional (a stand-in need not shed).
   */
  shedEarly?(): void;
}

/** Live clients (WebSocket and SSE): the fan-out's client side. */
export type LivePort = Pick<Fanout, "add" | "remove" | "handleOp" | "subscribe">;

/** The alert rules' admin API (engine/rule-book.ts); put and delete reject with a RuleError (bad_rule) naming the fault. */
export interface RulesPort {
  list(): RuleEntry[];
  get(name: string): RuleEntry | undefined;
  put(name: string, def: unknown): Promise<{ created: boolean }>;
  delete(name: string): Promise<boolean>;
  actionStatus(): ActionStatus[];
}

/**
 * The reference tables (engine/table-book.ts); put and patch reject with a
 * TableError naming the row, column or bound at fault (bad_table: 400,
 * too_large: 413). patch answers undefined when there is no such table.
 */
export interface TablesPort {
  list(): TableSummary[];
  get(name: string, offset: number, limit: number): TablePage | undefined;
  put(name: string, body: TableBody, key: string | undefined): Promise<{ created: boolean; table: TableSummary }>;
  patch(name: string, body: TableBody, key: string | undefined): Promise<(TableSummary & { inserted: number; updated: number }) | undefined>;
  delete(name: string): Promise<boolean>;
}

/** The continuous views' admin API (engine/view-book.ts); put rejects with a ViewError (bad_view) naming the fault. */
export interface ViewsPort {
  list(): ViewEntry[];
  get(name: string): ViewEntry | undefined;
  put(name: string, def: unknown): Promise<{ created: boolean }>;
  delete(name: string): Promise<boolean>;
}

/** /ready and /metrics. */
export interface OpsPort {
  /** Why the engine is not ready; empty when it is. */
  notReady(): string[];
  /** The Prometheus text exposition. */
  metricsText(): string;
}
