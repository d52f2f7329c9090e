/**
 * A continuous view as configured (the config file's `views:` or the admin
 * API's body; API.md "Views and reference tables") turned into a validated,
 * compiled View.
 *
 *   name: revenue_by_segment        letters, digits, _ (its results are series view.<name>{…})
 *   from: shop.purchase             a name glob
 *   where: {country: DE, page: "=~/checkout*", users.tier: "!=free", value: "> 0"}
 *   join: {table: users, on: user}  tag `user` = users' key; columns join as users.<col>
 *   group_by: [users.segment, page] tags, joined columns (their tag is the column's name), and
 *                                   `name`, the event's name (so a tag called name cannot be grouped by)
 *   window: 1m                      any one spec: 1m tumbling, 5m/1m sliding
 *   aggregates: [sum, count, avg]   count sum min max avg p50 p95 p99 count_distinct
 *   distinct: user                  the tag count_distinct counts (required with it)
 *   having: count > 100             <aggregate> <op> <number>: a hit is an alert (kind view)
 *   emit: changes                   or final (default)
 *
 * `where` values: "v" (equal), "!=v", "=~glob", "!~glob"; a key `value`
 * compares each event's value ("> 10", ">= 0", "< 5", "<= 5", "== 1", "!= 0").
 * A missing tag or joined column reads as "" in `where`, and as "unknown" in
 * a group (API.md). Errors are ViewErrors naming the path of the bad key:
 * "views[1].window: ...", "views[0].group_by[1]: ...".
 *
 * @example
 *   const v = parseView({ name: "rev", from: "shop.purchase", join: { table: "users", on: "user" },
 *     group_by: ["users.segment"], window: "1m", aggregates: ["sum", "count"] });
 *   v.groupBy; // [{ kind: "column", table: "users", column: "segment", tag: "segment" }]
 */
import { z } from "zod";
import { WeirError } from "../../runtime/errors.ts";
import { issueText, valueAt } from "../../runtime/issue-text.ts";
import { limits } from "../../runtime/limits.ts";
import { compileGlob, type GlobMatcher } from "../../runtime/series.ts";
import { type WindowSpec, parseWindowSpecs } from "../window-spec.ts";
import type { Comparison } from "../rules/expr.ts";

export class ViewError extends WeirError {
  override name = "ViewError";
  constructor(message: string) {
    super("bad_view", message);
  }
}

export const viewAggregates = ["count", "sum", "min", "max", "avg", "p50", "p95", "p99", "count_distinct"] as const;
export type ViewAggregate = (typeof viewAggregates)[number];
export type ValueOp = Comparison;

/** One `where` condition on a tag or a joined column (`table` set), or on the event's value. */
export type ViewCondition =
  | { kind: "tag"; key: string; table: string | null; negate: boolean; value: string; re: GlobMatcher | null }
  | { kind: "value"; op: ValueOp; threshold: number };

/** A group's part: a tag of the series, a column of the joined table (its tag named by the column), or the event's name (tag `name`). */
export type GroupPart =
  | { kind: "tag"; key: string; tag: string }
  | { kind: "column"; table: string; column: string; tag: string }
  | { kind: "name"; tag: "name" };

export interface View {
  name: string;
  /** The results' series name: view.<name>. */
  seriesName: string;
  fromText: string;
  /** The exact name, or null when `from` is a glob. */
  fromName: string | null;
  fromRe: GlobMatcher | null;
  where: ViewCondition[];
  join: { table: string; on: string } | null;
  groupBy: GroupPart[];
  window: WindowSpec;
  aggregates: ViewAggregate[];
  distinct: string | null;
  having: { agg: ViewAggregate; op: ValueOp; threshold: number; text: string } | null;
  emit: "final" | "changes";
  /** Whether the aggregates need a quantile sketch (p50, p95, p99). */
  sketch: boolean;
  /** The definition as validated: a view put again with the same one keeps its open aggregates. */
  fingerprint: string;
}

const nameRe = /^[A-Za-z_][A-Za-z0-9_]*$/;
const keyRe = /^[A-Za-z_][A-Za-z0-9_]*$/;
const columnRe = /^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$/;
const valueOpRe = /^\s*(>=|<=|==|!=|>|<)\s*(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$/;
const havingRe = /^\s*([a-z_0-9]+)\s*(>=|<=|==|!=|>|<)\s*(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$/;

/** The view as written; field names as in the config file. */
export const viewSchema = z.strictObject({
  name: z.string().max(limits.viewNameCharsMax).regex(nameRe, "must be letters, digits or _, starting with a letter or _"),
  from: z.string().min(1).max(limits.nameCharsMax),
  where: z.record(z.string().max(limits.tagKeyCharsMax * 2 + 1), z.union([z.string().max(limits.tagValueCharsMax + 2), z.number()]))
    .refine((w) => Object.keys(w).length <= limits.viewConditionsMax, `at most ${limits.viewConditionsMax} conditions`)
    .default({}),
  join: z.strictObject({ table: z.string().regex(keyRe, "must be a table name"), on: z.string().max(limits.tagKeyCharsMax) }).optional(),
  group_by: z.array(z.string().max(limits.tagKeyCharsMax * 2 + 1)).max(limits.viewGroupByMax).default([]),
  window: z.string().min(1).max(64),
  aggregates: z.array(z.enum(viewAggregates)).min(1).max(viewAggregates.length).default(["count"]),
  distinct: z.string().max(limits.tagKeyCharsMax).optional(),
  having: z.string().max(200).optional(),
  emit: z.enum(["final", "changes"]).default("final"),
});
export type ViewInput = z.input<typeof viewSchema>;

export interface ParseViewOptions {
  /** Prefix of every error's path, e.g. "views[2]"; "view" by default. */
  path?: string;
}

/**
 * Validates and compiles one view (see the module comment); throws a ViewError naming the path of the bad key.
 * @example parseView(JSON.parse(body), { path: "view" })
 */
export function parseView(input: unknown, opts: ParseViewOptions = {}): View {
  const path = opts.path ?? "view";
  const parsed = viewSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.reduce<string>((p, k) => (typeof k === "number" ? `${p}[${k}]` : `${p}.${String(k)}`), path);
    throw new ViewError(issueText({ ...issue, path: [where] } as z.core.$ZodIssue, { [where]: valueAt(input, issue.path) }, path));
  }
  const v = parsed.data;
  const fail = (field: string, message: string): never => {
    throw new ViewError(`${path}.${field}: ${message}`);
  };
  const join = v.join ?? null;
  if (join !== null && !keyRe.test(join.on)) fail("join.on", "must be a tag key");
  const columnOf = (text: string, field: string): { table: string; column: string } | null => {
    const m = columnRe.exec(text);
    if (m === null) return null;
    if (join === null || m[1] !== join.table) fail(field, `"${text}" reads table ${m[1]}, which the view does not join (join: {table: ${m[1]}, on: <tag>})`);
    return { table: m[1], column: m[2] };
  };
  const where: ViewCondition[] = [];
  for (const [key, raw] of Object.entries(v.where)) {
    const field = `where.${key}`;
    if (key === "value") {
      const m = valueOpRe.exec(String(raw));
      if (m === null) fail(field, 'must be a comparison such as "> 10"');
      where.push({ kind: "value", op: m![1] as ValueOp, threshold: Number(m![2]) });
      continue;
    }
    const col = columnOf(key, field);
    if (col === null && !keyRe.test(key)) fail(field, "must be a tag key, a joined column (<table>.<column>) or value");
    const text = String(raw);
    const op = text.startsWith("!~") ? "!~" : text.startsWith("=~") ? "=~" : text.startsWith("!=") ? "!=" : "=";
    const value = op === "=" ? text : text.slice(2);
    where.push({
      kind: "tag", key: col?.column ?? key, table: col?.table ?? null, negate: op === "!=" || op === "!~", value,
      re: op === "=~" || op === "!~" ? compileGlob(value) : null,
    });
  }
  const tags = new Set<string>();
  const groupBy = v.group_by.map((text, i): GroupPart => {
    const field = `group_by[${i}]`;
    const col = columnOf(text, field);
    if (col === null && !keyRe.test(text)) fail(field, "must be a tag key or a joined column (<table>.<column>)");
    const tag = col?.column ?? text;
    if (tags.has(tag)) fail(field, `two parts of the group would both be tag "${tag}"`);
    tags.add(tag);
    // `name` is the event's name, as `value` in `where` is its value: grouping by event name needs no tag for it.
    if (col === null && text === "name") return { kind: "name", tag: "name" };
    return col === null ? { kind: "tag", key: text, tag } : { kind: "column", table: col.table, column: col.column, tag };
  });
  let window: WindowSpec;
  try {
    const specs = parseWindowSpecs(v.window);
    if (specs.length !== 1) fail("window", "one window spec, such as 1m or 5m/1m");
    window = specs[0];
  } catch (e) {
    if (e instanceof ViewError) throw e;
    return fail("window", (e as Error).message);
  }
  if (window.sizeMs / window.slideMs > limits.viewSlidesMax) fail("window", `a sliding window of at most ${limits.viewSlidesMax} slides`);
  const aggregates = [...new Set(v.aggregates)];
  const distinct = v.distinct ?? null;
  if (aggregates.includes("count_distinct") && distinct === null) fail("distinct", "count_distinct needs the tag it counts (distinct: user)");
  if (distinct !== null && !keyRe.test(distinct)) fail("distinct", "must be a tag key");
  let having: View["having"] = null;
  if (v.having !== undefined) {
    const m = havingRe.exec(v.having);
    if (m === null) fail("having", 'must be "<aggregate> <op> <number>", such as count > 100');
    const agg = m![1] as ViewAggregate;
    if (!viewAggregates.includes(agg)) fail("having", `unknown aggregate "${m![1]}" (${viewAggregates.join(", ")})`);
    if (!aggregates.includes(agg)) fail("having", `"${agg}" is not among the view's aggregates (${aggregates.join(", ")})`);
    having = { agg, op: m![2] as ValueOp, threshold: Number(m![3]), text: v.having.trim() };
  }
  const glob = v.from.includes("*");
  return {
    name: v.name, seriesName: `view.${v.name}`, fromText: v.from, fromName: glob ? null : v.from, fromRe: glob ? compileGlob(v.from) : null,
    where, join, groupBy, window, aggregates, distinct, having, emit: v.emit, sketch: aggregates.some((a) => a === "p50" || a === "p95" || a === "p99"),
    fingerprint: JSON.stringify(v),
  };
}
