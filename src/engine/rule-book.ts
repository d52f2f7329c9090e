/**
 * The alert rules on the main thread (API.md "Rules and actions"): which
 * rules there are, where each came from, what their instances last did,
 * and their actions. The rules are judged in the partition workers
 * (partition-pipeline.ts); this book keeps their definitions and follows
 * their transitions.
 *
 * - Sources. The config file's `rules:` first, then the admin API's changes
 *   over them (PUT and DELETE, kept in the store's `rules` table as a
 *   definition or a deletion, so they survive restarts and win over the
 *   file's rule of the same name). Every definition is validated against
 *   the windows and the actions before it is taken (parseRule: a RuleError
 *   naming the part at fault), and every change goes to each partition
 *   worker (`post`); a worker started later reads defs().
 * - Instances. The last transition of each rule and series, as the
 *   partitions emit them (and, at start, as the store kept them): the
 *   `instances` of GET /api/v1/rules. A rule changed in meaning (its
 *   expression, `for` or `keep_firing_for`) starts afresh in the workers,
 *   and here.
 * - Actions. A transition to firing or resolved goes to its rule's actions
 *   once it is committed with its partition's checkpoint (committed()): a
 *   replay computes it again and commits it as the same row, so it is
 *   handed over once. Each row is then marked `handed`; a start hands over
 *   the committed rows still unmarked (a kill -9 between the commit and the
 *   mark), with the same Idempotency-Key. The actions' queues are in
 *   memory: what is queued when the process dies is lost (said in README).
 *
 * @example
 *   const book = RuleBook.load({ cfg, db, log, writer, post });
 *   await book.put("slow", { name: "slow", expr: "avg(page.load) > 3000", for: "1m" });
 *   book.transitions([t]); book.committed([t]); // from the partition outputs
 */
import type { Database } from "bun:sqlite";
import type { RuleAlert } from "../actions/action.ts";
import { type Actions, buildActions, type ActionsDeps } from "../actions/registry.ts";
import { rollupsFor } from "../actors/partition-pipeline.ts";
import { RuleError, selectorMatches } from "../actors/rules/expr.ts";
import type { RuleTransition } from "../actors/rules/rule-set.ts";
import { parseRule, type Rule } from "../actors/rules/rule.ts";
import type { AlertKey } from "../actors/store.ts";
import type { Config } from "../config.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import type { StoreWriter } from "../storage/store-writer.ts";

export interface RuleBookDeps {
  cfg: Config;
  db: Database;
  log: Log;
  writer: () => StoreWriter;
  /** Every rule definition, to each partition worker. */
  post: (defs: unknown[]) => void;
  /** Known series keys that `pick` takes, at most `max`. */
  series: (pick: (name: string, tags: Readonly<Record<string, string>>) => boolean, max: number) => string[];
}

/** One rule instance as GET /api/v1/rules lists it: its last transition. */
export interface InstanceEntry { series: string; state: string; since: number; value: number | string | null }

export interface RuleEntry {
  name: string;
  source: "config" | "api";
  /** The definition as put or written in the config file. */
  rule: unknown;
  /** What the dashboard draws: the aggregate compared (or anomaly / trend), the window it reads, and the threshold (a number, or a severity or class). */
  watch: { kind: "aggregate" | "anomaly" | "trend"; agg: string | null; over: string | null; op: string | null; threshold: number | string };
  /** Series the selector picks among those known, at most limits.ruleSeriesListedMax (`seriesMore` if more). */
  series: string[];
  seriesMore: boolean;
  instances: InstanceEntry[];
}

interface Held { def: unknown; rule: Rule; source: "config" | "api" }

export class RuleBook {
  private readonly rules = new Map<string, Held>();
  private readonly instances = new Map<string, Map<string, InstanceEntry>>();
  private actions: Actions | null = null;
  /** Committed transitions waiting for the actions to be started (startActions), bounded. */
  private waiting: RuleTransition[] = [];
  private readonly configNames: Set<string>;

  private constructor(private readonly d: RuleBookDeps) {
    this.configNames = new Set(d.cfg.rules.map((r) => (r as { name: string }).name));
  }

  /** The config file's rules with the admin API's changes over them, and the instances the store kept. */
  static load(d: RuleBookDeps): RuleBook {
    const book = new RuleBook(d);
    for (const def of d.cfg.rules) book.take(def, "config");
    const changes = d.db.query(`SELECT name, def FROM rules ORDER BY updated_ms`).all() as Array<{ name: string; def: string | null }>;
    for (const c of changes) {
      if (c.def === null) {
        book.rules.delete(c.name);
        continue;
      }
      try {
        book.take(JSON.parse(c.def), "api");
      } catch (e) {
        // Valid when it was put; the windows or actions changed since: said, and left out.
        d.log.warn("rules: a rule kept from the admin API no longer fits the configuration; left out", { rule: c.name, error: (e as Error).message });
      }
    }
    const last = d.db.query(
      `SELECT rule, series, state, ts, value FROM alerts a
       WHERE kind = 'rule' AND ts = (SELECT MAX(ts) FROM alerts b WHERE b.rule = a.rule AND b.series = a.series AND b.kind = 'rule')`,
    ).all() as Array<{ rule: string; series: string; state: string; ts: number; value: string }>;
    for (const r of last) if (book.rules.has(r.rule)) book.follow({ rule: r.rule, series: r.series, state: r.state, ts: r.ts, value: JSON.parse(r.value) });
    return book;
  }

  /** The definitions as the partition workers take them, in order. */
  defs(): unknown[] {
    return [...this.rules.values()].map((h) => h.def);
  }

  /** The rules as compiled, in order. */
  parsed(): Rule[] {
    return [...this.rules.values()].map((h) => h.rule);
  }

  list(): RuleEntry[] {
    return [...this.rules.entries()].map(([name, h]) => {
      const e = h.rule.expr;
      const watch = e.kind === "aggregate"
        ? { kind: e.kind, agg: e.agg, over: e.over?.text ?? null, op: e.op, threshold: e.threshold }
        : { kind: e.kind, agg: null, over: null, op: e.kind === "anomaly" ? ">=" : "==", threshold: e.kind === "anomaly" ? e.severity : e.class };
      const sel = h.rule.selector;
      const series = this.d.series((n, tags) => selectorMatches(sel, n, tags), limits.ruleSeriesListedMax + 1);
      const more = series.length > limits.ruleSeriesListedMax;
      return {
        name, source: h.source, rule: h.def, watch, series: more ? series.slice(0, -1) : series, seriesMore: more,
        instances: [...(this.instances.get(name)?.values() ?? [])],
      };
    });
  }

  get(name: string): RuleEntry | undefined {
    return this.list().find((r) => r.name === name);
  }

  /** Each action's deliveries (null before startActions). */
  actionStatus(): ReturnType<Actions["status"]> {
    return this.actions?.status() ?? [];
  }

  deliveryCounters(): ReturnType<Actions["deliveryCounters"]> {
    return this.actions?.deliveryCounters() ?? [];
  }

  /**
   * Adds or replaces a rule (the admin API's PUT); throws a RuleError naming
   * the part at fault. Kept in the store before it takes effect.
   * @example await book.put("slow", { name: "slow", expr: "avg(page.load) > 3000" }) // { created: true }
   */
  async put(name: string, def: unknown): Promise<{ created: boolean }> {
    if (typeof def === "object" && def !== null && !Array.isArray(def) && (def as { name?: unknown }).name === undefined) def = { ...def, name };
    const rule = this.parse(def, "rule");
    if (rule.name !== name) throw new RuleError(`rule.name: "${rule.name}" differs from the name in the path, "${name}"`);
    const old = this.rules.get(name);
    if (old === undefined && this.rules.size >= limits.rulesMax) throw new RuleError(`rules: ${this.rules.size} already, at most ${limits.rulesMax}`);
    await this.d.writer().writeDefinition("rules", name, def);
    this.rules.set(name, { def, rule, source: "api" });
    if (old !== undefined && meaningOf(old.rule) !== meaningOf(rule)) this.instances.delete(name); // the workers start it afresh
    this.d.post(this.defs());
    return { created: old === undefined };
  }

  /** Removes a rule (also one of the config file, for good); false if there is none of that name. */
  async delete(name: string): Promise<boolean> {
    if (!this.rules.has(name)) return false;
    await this.d.writer().writeDefinition("rules", name, null);
    this.rules.delete(name);
    this.instances.delete(name);
    this.d.post(this.defs());
    return true;
  }

  /** Transitions as a partition emits them (live or replayed): the instances' last states. */
  transition(t: RuleTransition): void {
    if (this.rules.has(t.rule)) this.follow(t);
  }

  /**
   * Transitions committed with their partition's checkpoint: those to
   * firing or resolved go to their rule's actions (waiting, bounded, until
   * startActions), then are marked handed in the store.
   */
  committed(rows: readonly RuleTransition[]): void {
    const due = rows.filter((t) => t.state === "firing" || t.state === "resolved");
    if (due.length === 0) return;
    if (this.actions === null) {
      this.waiting.push(...due);
      if (this.waiting.length > limits.actionsWaitingMax) {
        const dropped = this.waiting.splice(0, this.waiting.length - limits.actionsWaitingMax);
        this.d.log.error("rules: transitions waiting for the actions to start dropped", { dropped: dropped.length });
      }
      return;
    }
    this.hand(due);
  }

  /**
   * Builds the actions (NATS mode passes its publisher for `nats` ones) and
   * hands over what waited: the transitions committed since this start, and
   * those a previous run committed and never marked handed.
   */
  startActions(deps: Omit<ActionsDeps, "log">): void {
    this.actions = buildActions({ log: { type: "log" }, ...this.d.cfg.actions }, { ...deps, log: this.d.log }); // `log` is there unless configured otherwise
    const unhanded = this.d.db.query(
      `SELECT rule, series, state, ts, value, threshold, severity, labels, advice FROM alerts
       WHERE handed = 0 AND kind = 'rule' AND state IN ('firing', 'resolved') ORDER BY ts LIMIT ?`,
    ).all(limits.actionsWaitingMax) as Array<Record<string, string | number | null>>;
    const earlier = unhanded.map((r): RuleTransition => ({
      kind: "rule", rule: String(r.rule), series: String(r.series), state: r.state as "firing" | "resolved", ts: Number(r.ts),
      value: JSON.parse(String(r.value)), threshold: JSON.parse(String(r.threshold)), severity: r.severity as RuleTransition["severity"],
      labels: JSON.parse(String(r.labels)), advice: r.advice === null ? null : String(r.advice),
    }));
    const waiting = this.waiting;
    this.waiting = [];
    const seen = new Set<string>();
    const all = [...earlier, ...waiting].filter((t) => {
      const k = `${t.rule}|${t.series}|${t.ts}|${t.state}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (earlier.length > 0) this.d.log.info("rules: transitions committed before this start and not yet handed to their actions go now", { count: earlier.length });
    this.hand(all);
  }

  async close(): Promise<void> {
    await this.actions?.close();
  }

  private hand(rows: readonly RuleTransition[]): void {
    const keys: AlertKey[] = [];
    for (const t of rows) {
      const names = this.rules.get(t.rule)?.rule.actions ?? [];
      if (names.length > 0) this.actions!.deliver(names, alertOf(t));
      keys.push({ rule: t.rule, series: t.series, ts: t.ts, state: t.state });
    }
    if (keys.length === 0) return;
    this.d.writer().markHanded(keys).catch((e: Error) => {
      this.d.log.warn("rules: marking transitions handed failed; a restart hands them over again (same Idempotency-Key)", { error: e.message });
    });
  }

  private follow(t: { rule: string; series: string; state: string; ts: number; value: number | string | null }): void {
    let m = this.instances.get(t.rule);
    if (m === undefined) this.instances.set(t.rule, m = new Map());
    if (t.state === "inactive") {
      m.delete(t.series);
      return;
    }
    const old = m.get(t.series);
    if (old !== undefined && old.since > t.ts) return; // an older one, as a replay after a newer was seen
    m.set(t.series, { series: t.series, state: t.state, since: t.ts, value: t.value });
    if (m.size > limits.ruleInstancesListedMax) {
      // Resolved instances go first; the newest stay.
      for (const [k, v] of m) {
        if (m.size <= limits.ruleInstancesListedMax) break;
        if (v.state === "resolved") m.delete(k);
      }
    }
  }

  private take(def: unknown, source: "config" | "api"): void {
    const rule = this.parse(def, "rule");
    this.rules.set(rule.name, { def, rule, source });
  }

  private parse(def: unknown, path: string): Rule {
    const cfg = this.d.cfg;
    return parseRule(def, {
      path, windows: { specs: cfg.windows, rollups: rollupsFor(cfg.windows) }, actions: [...Object.keys(cfg.actions), "log"],
    });
  }

  /** Whether a rule of this name comes from the config file. */
  fromConfig(name: string): boolean {
    return this.configNames.has(name);
  }
}

/** What decides a rule's instances (rule-set.ts keeps them across any other change). */
function meaningOf(r: Rule): string {
  return `${r.exprText.trim()}\n${r.forMs}\n${r.keepFiringForMs}`;
}

function alertOf(t: RuleTransition): RuleAlert {
  return {
    kind: "rule", rule: t.rule, series: t.series, state: t.state as RuleAlert["state"], value: t.value, threshold: t.threshold,
    severity: t.severity, labels: t.labels, advice: t.advice ?? "", ts: t.ts,
  };
}
