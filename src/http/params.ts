/**
 * Query-parameter validation: a bad value is a 400 naming the parameter,
 * never silently clamped (API.md "Queries").
 *
 * @example
 *   const q = parseQuery(windowsQuery, c.req.query()); // throws HttpError(400, "limit: ...")
 */
import { z } from "zod";
import { issueText } from "../runtime/issue-text.ts";
import { HttpError } from "./errors.ts";

export function parseQuery<T extends z.ZodType>(schema: T, query: Record<string, string>): z.infer<T> {
  const r = schema.safeParse(query);
  if (r.success) return r.data;
  throw new HttpError(400, issueText(r.error.issues[0], query, "query"));
}

/** A whole number in [min, max] given as text. */
export const intParam = (min: number, max: number) =>
  z.string().regex(/^-?\d+$/, "must be a whole number").transform(Number)
    .pipe(z.number().int().min(min, `must be ≥ ${min}`).max(max, `must be ≤ ${max}`));

/** Epoch milliseconds, or an ISO-8601 time. */
export const timeParam = z.string().transform((s, ctx) => {
  const ms = /^-?\d+$/.test(s) ? Number(s) : /^\d{4}-\d{2}-\d{2}/.test(s) ? Date.parse(s) : NaN;
  if (!Number.isSafeInteger(ms)) {
    ctx.addIssue({ code: "custom", message: "must be epoch milliseconds or an ISO-8601 time" });
    return z.NEVER;
  }
  return ms;
});

/** A JSON request body checked against `schema`: 400 "body: not JSON" or naming the field at fault. */
export async function parseJsonBody<T extends z.ZodType>(schema: T, read: () => Promise<unknown>, hint: string): Promise<z.infer<T>> {
  let json: unknown;
  try {
    json = await read();
  } catch {
    throw new HttpError(400, `body: not JSON; send ${hint}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new HttpError(400, issueText(r.error.issues[0], json, "body"));
  return r.data;
}
