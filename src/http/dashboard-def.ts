/**
 * What the dashboard shows besides the charts the user picks: the config
 * file's `dashboard:` (or the demo's, src/sim/demo-dashboard.ts), served to
 * the page at GET /api/v1/dashboard. The page holds no series name of its
 * own; without a `dashboard:` it charts the busiest series and hides the
 * gauges and the top-k board.
 *
 * A `series` here is a glob over series keys; one without `{` also matches
 * the name alone, so `sensor.temperature` picks every device's temperature.
 *
 * @example
 *   parseDashboard({ gauges: [{ series: "app.cpu", unit: "%", min: 0, max: 100 }] });
 *   // { def: { source: "config", charts: [], gauges: [{ series: "app.cpu", label: "app.cpu", unit: "%", min: 0, max: 100 }], cards: [], top: null } }
 */
import { z } from "zod";
import { limits } from "../runtime/limits.ts";
import { issueText } from "../runtime/issue-text.ts";

const selector = z.string().min(1).max(512);
const label = z.string().min(1).max(limits.dashboardLabelCharsMax);
const unit = z.string().max(16).default("");

const gaugeSchema = z.strictObject({ series: selector, label: label.optional(), unit, min: z.number(), max: z.number() })
  .refine((g) => g.min < g.max, { message: "must be above min", path: ["max"] })
  .transform((g) => ({ ...g, label: g.label ?? g.series }));

/** A card's figure over the latest closed window of every series it picks: rate is events per second. */
export const cardAggs = ["count", "rate", "sum", "avg", "min", "max"] as const;
const cardSchema = z.strictObject({ series: selector, label: label.optional(), agg: z.enum(cardAggs).default("count"), unit })
  .transform((c) => ({ ...c, label: c.label ?? `${c.series} ${c.agg}` }));

const topSchema = z.strictObject({
  name: z.string().min(1).max(limits.nameCharsMax),
  by: z.string().min(1).max(limits.tagKeyCharsMax),
  agg: z.enum(["sum", "count", "avg", "min", "max", "p99"]).default("sum"),
  label: label.optional(),
}).transform((t) => ({ ...t, label: t.label ?? `${t.name} ${t.agg} by ${t.by}` }));

export const dashboardSchema = z.strictObject({
  /** Series charted when the link picks none: the first series each selector matches (none: the busiest). */
  charts: z.array(selector).max(limits.dashboardChartsMax).default([]),
  gauges: z.array(gaugeSchema).max(limits.dashboardGaugesMax).default([]),
  cards: z.array(cardSchema).max(limits.dashboardCardsMax).default([]),
  top: topSchema.nullable().default(null),
});

export type DashboardDef = z.infer<typeof dashboardSchema> & { source: "config" | "demo" | "none" };

/** The config file's `dashboard:` validated, or what is wrong with it as "path: fault" (`dashboard.gauges.0.max: must be above min`). */
export function parseDashboard(def: unknown, source: "config" | "demo" = "config"): { def: DashboardDef } | { error: string } {
  const r = dashboardSchema.safeParse(def);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { error: issueText({ ...issue, path: ["dashboard", ...issue.path] }, { dashboard: def }, "dashboard") };
  }
  return { def: { source, ...r.data } };
}

/** No `dashboard:` and no demo: the page charts the busiest series and shows no gauge, card or board of its own. */
export const emptyDashboard: DashboardDef = { source: "none", charts: [], gauges: [], cards: [], top: null };
