/**
 * A metric view's definition: a named SQL SELECT over the lake's tables,
 * reusable from other queries by its name (config file `metric_views:` or
 * PUT /api/v1/metric-views/{name}). With `materialize`, weir also runs it
 * every `every` and appends its rows, stamped `materialized_at`, to table
 * `<name>_materialized` (materialized.ts), whose runs older than
 * `retention` (default WEIR_RETENTION_LAKE) are deleted.
 *
 * @example
 *   metricViewSchema.parse({ name: "daily_purchases", sql: "SELECT ... FROM events GROUP BY 1", materialize: { every: "1h" } });
 */
import { z } from "zod";
import { parseDurationMs } from "../actors/window-spec.ts";
import { limits } from "../runtime/limits.ts";

export const metricViewNamePattern = /^[a-z_][a-z0-9_]*$/;

export const metricViewName = z.string().max(limits.metricViewNameCharsMax)
  .regex(metricViewNamePattern, "must be lower-case letters, digits and _, not starting with a digit");

/** A duration as text ("10s", "1h", "1d") within [min, max] ms, kept as written. */
const durationText = (min: number, max: number) => z.string().superRefine((s, ctx) => {
  try {
    const ms = parseDurationMs(s);
    if (ms < min || ms > max) ctx.addIssue({ code: "custom", message: `must lie within [${min} ms, ${max} ms]` });
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
  }
});

export const materializeSchema = z.strictObject({
  every: durationText(limits.lakeMaterializeEveryMsMin, limits.lakeMaterializeEveryMsMax),
  retention: durationText(limits.lakeMaterializeEveryMsMin, 3650 * 86_400_000).optional(),
});

export const metricViewSchema = z.strictObject({
  name: metricViewName,
  sql: z.string().min(1).max(limits.metricViewSqlCharsMax),
  description: z.string().max(1024).default(""),
  materialize: materializeSchema.optional(),
});

export type MetricViewDef = z.infer<typeof metricViewSchema>;

/** The table a materialised metric view appends to. */
export function materializedName(view: string): string {
  return `${view}_materialized`;
}
