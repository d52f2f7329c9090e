/**
 * One input error in weir's words, "field: what is wrong", from a zod
 * issue: zod's own English is not our API (STYLE.md). Our schemas' custom
 * messages are kept as written. Used wherever zod validates input: query
 * parameters, live subscription ops, the config.
 *
 * @example
 *   issueText(schema.safeParse(q).error!.issues[0], q, "query") // "limit: must be ≤ 10000"
 */
import type { z } from "zod";

export function issueText(issue: z.core.$ZodIssue, input: unknown, whole: string): string {
  if (issue.code === "unrecognized_keys") return `${[...issue.path, issue.keys[0]].join(".")}: unknown field`;
  const field = issue.path.length > 0 ? issue.path.join(".") : whole;
  switch (issue.code) {
    case "invalid_type":
      return `${field}: ${valueAt(input, issue.path) === undefined ? "required" : `must be a ${issue.expected}`}`;
    case "invalid_value":
      return `${field}: must be one of ${issue.values.map(String).join(", ")}`;
    case "too_big":
      return `${field}: ${issue.origin in units ? `at most ${issue.maximum} ${units[issue.origin]}` : `must be ≤ ${issue.maximum}`}`;
    case "too_small":
      return `${field}: ${issue.origin in units ? `at least ${issue.minimum} ${units[issue.origin]}` : `must be ≥ ${issue.minimum}`}`;
    default:
      return `${field}: ${issue.message}`;
  }
}


/** What a length bound counts, by the kind of value bounded. */
const units: Record<string, string> = { string: "characters", array: "items", set: "items" };

/** The value at a path of the input (zod does not report it by default). */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const k of path) {
    if (typeof v !== "object" || v === null || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}
