/**
 * A metric view's definition: a named SQL SELECT over the lake's tables,
 * reusable from other queries by its name (config file `metric_views:` or
 * PUT /api/v1/metric-views/{name}).
 *
 * @example
 *   metricViewSchema.parse({ name: "daily_purchases", sql: "SELECT ... FROM events GROUP BY 1" });
 */
import { z } from "zod";
import { limits } from "../runtime/limits.ts";

export const metricViewNamePattern = /^[a-z_][a-z0-9_]*$/;

export const metricViewName = z.string().max(limits.metricViewNameCharsMax)
  .regex(metricViewNamePattern, "must be lower-case letters, digits and _, not starting with a digit");

export const metricViewSchema = z.strictObject({
  name: metricViewName,
  sql: z.string().min(1).max(limits.metricViewSqlCharsMax),
  description: z.string().max(1024).default(""),
});

export type MetricViewDef = z.infer<typeof metricViewSchema>;
