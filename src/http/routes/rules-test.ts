/**
 * POST /api/v1/rules/test (API.md "Rules and actions", role admin): the
 * transitions a rule would have made over stored history, by the back-test
 * of src/actors/rules/backtest.ts over the windows the read model lists.
 *
 * Body: {"rule": {...}, "from": ..., "to": ...}. `rule` is a rule as
 * PUT /api/v1/rules/{name} takes it (its actions are never run); `from` is
 * required and `to` defaults to now, each epoch ms (a number or its digits)
 * or an ISO-8601 time. Answer: {"window": "<label read>", "transitions":
 * [...]}, the transitions in event-time order, each an alert of kind "rule".
 * Every fault is a 400 naming its field ("rule.expr: at column 5: ...",
 * "from: must not be after to"), another content type than JSON a 415; bounds: the body
 * (limits.ruleBacktestBodyBytesMax, else 413), the series the selector
 * matches (ruleBacktestSeriesMax) and the windows read
 * (ruleBacktestWindowsMax), past either a 400 naming it, never a cut answer.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { backtest, type BacktestWindows, planBacktest } from "../../actors/rules/backtest.ts";
import { selectorMatches } from "../../actors/rules/expr.ts";
import { parseRule } from "../../actors/rules/rule.ts";
import { parseDurationMs } from "../../actors/window-spec.ts";
import { issueText } from "../../runtime/issue-text.ts";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { timeParam } from "../params.ts";

/** The back-test's bounds; tests pass smaller ones. */
export interface RulesTestOptions { seriesMax: number; windowsMax: number; bodyBytesMax: number }

const defaults: RulesTestOptions = {
  seriesMax: limits.ruleBacktestSeriesMax, windowsMax: limits.ruleBacktestWindowsMax, bodyBytesMax: limits.ruleBacktestBodyBytesMax,
};

/** A time in a JSON body: epoch ms as a number, or what a query parameter takes (digits or ISO-8601). */
const bodyTime = z.unknown().transform((v, ctx) => {
  const ms = typeof v === "number" ? v : typeof v === "string" ? (timeParam.safeParse(v).data ?? NaN) : NaN;
  if (Number.isSafeInteger(ms)) return ms;
  ctx.addIssue({ code: "custom", message: v === undefined ? "required" : "must be epoch milliseconds or an ISO-8601 time" });
  return z.NEVER;
});
const bodySchema = z.strictObject({ rule: z.unknown(), from: bodyTime, to: bodyTime.optional() });

export function rulesTestRoutes(deps: Pick<AppDeps, "read" | "cfg" | "doc">, opts: Partial<RulesTestOptions> = {}): Hono {
  const o = { ...defaults, ...opts };
  const app = new Hono();
  const windows = windowsOf(deps);
  app.post(
    "/api/v1/rules/test",
    requireRole(deps.cfg.tokens, "admin"),
    bodyLimit({ maxSize: o.bodyBytesMax, onError: () => { throw new HttpError(413, `body: over ${o.bodyBytesMax} bytes (ruleBacktestBodyBytesMax)`); } }),
    async (c) => {
      if (deps.read.seriesWindows === undefined) throw new HttpError(404, "path: this weir keeps no window history to back-test on");
      if (!(c.req.header("content-type") ?? "").startsWith("application/json")) throw new HttpError(415, "content-type: a back-test is application/json");
      const body = parseBody(await c.req.text());
      const rule = parseRule(body.rule, { path: "rule", windows });
      const nowMs = Date.now();
      const to = body.to ?? nowMs;
      if (body.from > to) throw new HttpError(400, "from: must not be after to");
      const plan = planBacktest(rule.expr, windows, { from: body.from, nowMs, path: "rule" });
      const got = deps.read.seriesWindows({
        match: (name, tags) => selectorMatches(rule.selector, name, tags),
        window: plan.source, from: body.from, to, seriesMax: o.seriesMax, windowsMax: o.windowsMax,
      });
      if ("over" in got) {
        throw new HttpError(400, got.over === "series"
          ? `rule.expr: the selector matches more than ${got.max} series, the most one back-test reads (ruleBacktestSeriesMax): narrow it`
          : `from: the range holds more than ${got.max} windows of ${plan.source} for these series, the most one back-test reads (ruleBacktestWindowsMax): narrow the range or the selector`);
      }
      const series = got.series.map((s) => ({ ref: s, windows: s.windows }));
      return c.json({ window: plan.source, transitions: backtest(rule, plan, series, Math.min(to, nowMs - deps.cfg.latenessMs)) });
    },
  );
  deps.doc?.add({
    method: "POST", path: "/api/v1/rules/test", role: "admin", summary: "Back-tests a rule over the stored windows: the transitions it would have made",
    body: { types: ["application/json"], schema: bodySchema }, responses: { 200: "{window, transitions}", 400: "a bad rule or range, named", 413: "over ruleBacktestBodyBytesMax", 415: "not JSON" },
  });
  return app;
}

function parseBody(text: string): z.infer<typeof bodySchema> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(400, "body: not JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new HttpError(400, 'body: must be an object {"rule", "from", "to"}');
  const r = bodySchema.safeParse(json);
  if (!r.success) throw new HttpError(400, issueText(r.error.issues[0], json, "body"));
  return r.data;
}

/** The windows weir closes (the configured specs, then the rollups) with their retention (WEIR_RETENTION_*). */
function windowsOf(deps: Pick<AppDeps, "read" | "cfg">): BacktestWindows {
  const retention: Readonly<Record<string, number>> = deps.cfg.retentionMs;
  const rollups = deps.read.labels.filter((l) => !deps.read.specs.includes(l)).map((label) => ({ label, sizeMs: parseDurationMs(label) }));
  const keptMs: Record<string, number> = {};
  for (const s of deps.cfg.windows) keptMs[s.label] = deps.cfg.retentionMs.windows;
  for (const r of rollups) if (Object.hasOwn(retention, r.label)) keptMs[r.label] = retention[r.label];
  return { specs: deps.cfg.windows, rollups, keptMs };
}
