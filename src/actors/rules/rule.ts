/**
 * A rule as configured (the config file's `rules:` or the admin API's
 * body) turned into a validated, compiled Rule: its expression parsed, its
 * selector compiled, durations in ms, its advice template checked.
 *
 * Fields (API.md "Rules and actions"): name (1–64 characters of
 * [A-Za-z0-9_.:-], starting with a letter or _), expr, for and
 * keep_firing_for (durations such as 30s or 5m, default 0, at most
 * limits.ruleForMsMax), severity (info, warning or critical; default
 * warning), labels (at most limits.ruleLabelsMax, keys as tag keys, values
 * as tag values), advice (a template of at most limits.ruleAdviceCharsMax
 * characters), actions (names, at most limits.ruleActionsMax). Any other
 * field is an error.
 *
 * Advice placeholders: {{value}} (the value that caused the transition;
 * numbers with at most 6 significant digits, "no data" after a gap),
 * {{threshold}}, {{series}} (its key), {{rule}}, and {{labels.<k>}}: the
 * series' tag k, or the rule's label k, which wins (as in Prometheus); ""
 * when neither has it. Spaces inside the braces are allowed. Any other
 * placeholder, or a "{{" not closed, is an error naming it.
 *
 * Errors are RuleErrors in weir's words naming the path of the bad key:
 * "rules[2].for: must be a duration like 30s or 5m",
 * "rules[0].expr: at column 5: unknown aggregate ...".
 *
 * @example
 *   const rule = parseRule({ name: "page-load", expr: "avg(page.load) > 3000", for: "1m",
 *     advice: "{{labels.page}} loads in {{value}} ms: scale the UI tier" }, { path: "rules[0]" });
 *   rule.forMs; // 60000
 *   renderAdvice(rule.advice!, { value: 3412.5, threshold: 3000, series: 'page.load{page="/"}', rule: rule.name, labels: { page: "/" } });
 *   // "/ loads in 3412.5 ms: scale the UI tier"
 */
import { z } from "zod";
import { issueText, valueAt } from "../../runtime/issue-text.ts";
import { limits } from "../../runtime/limits.ts";
import { parseDurationMs } from "../window-spec.ts";
import { type CompiledSelector, compileSelector, type Expr, formatDurationMs, parseExpr, RuleError } from "./expr.ts";
import type { AlertValue } from "./instance.ts";
import { planRule, type RuleWindows } from "./plan.ts";

export const severities = ["info", "warning", "critical"] as const;
export type Severity = (typeof severities)[number];

export interface Rule {
  name: string;
  /** The expression as written. */
  exprText: string;
  expr: Expr;
  selector: CompiledSelector;
  forMs: number;
  keepFiringForMs: number;
  severity: Severity;
  labels: Record<string, string>;
  advice: AdviceTemplate | null;
  actions: string[];
}

export interface ParseRuleOptions {
  /** Prefix of every error's path, e.g. "rules[2]"; none by default. */
  path?: string;
  /** When given, `over` is checked against the windows weir closes (plan.ts). */
  windows?: RuleWindows;
  /** When given, every action must be one of these (the configured ones and "log"). */
  actions?: readonly string[];
}

const nameRe = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;
const labelKeyRe = /^[A-Za-z_][A-Za-z0-9_]*$/;
const durationHint = "must be a duration like 30s or 5m";

/** "30s", "5m", "0" or 0 (YAML's `for: 0`); a unit is required otherwise, as 30 could be seconds or ms. */
const duration = z.unknown().transform((s, ctx) => {
  const ms = s === 0 || s === "0" ? 0 : typeof s === "string" && /^\d+[a-z]+$/.test(s) ? safeDurationMs(s) : NaN;
  if (Number.isNaN(ms)) ctx.addIssue({ code: "custom", message: durationHint });
  else if (ms > limits.ruleForMsMax) ctx.addIssue({ code: "custom", message: `must be at most ${formatDurationMs(limits.ruleForMsMax)}` });
  else return ms;
  return z.NEVER;
});

const name = (what: string) =>
  z.string().max(limits.ruleNameCharsMax).regex(nameRe, `must be ${what} of letters, digits, _ . : or -, starting with a letter or _`);

/** The rule as written; field names as in the config file. */
export const ruleSchema = z.strictObject({
  name: name("a name"),
  expr: z.string(),
  for: duration.default(0),
  keep_firing_for: duration.default(0),
  severity: z.enum(severities).default("warning"),
  labels: z
    .record(z.string().max(limits.tagKeyCharsMax).regex(labelKeyRe, "a label key must be letters, digits or _, starting with a letter or _"), z.string().max(limits.tagValueCharsMax))
    .refine((l) => Object.keys(l).length <= limits.ruleLabelsMax, `at most ${limits.ruleLabelsMax} labels`)
    .default({}),
  advice: z.string().max(limits.ruleAdviceCharsMax).optional(),
  actions: z.array(name("an action name")).max(limits.ruleActionsMax).default([]),
});
export type RuleInput = z.input<typeof ruleSchema>;

/**
 * Validates and compiles one rule (see the module comment); throws a RuleError naming the path of the bad key.
 * @example parseRule(JSON.parse(body)) // the admin API's PUT
 */
export function parseRule(input: unknown, opts: ParseRuleOptions = {}): Rule {
  const prefix = opts.path === undefined ? "" : `${opts.path}.`;
  const parsed = ruleSchema.safeParse(input);
  if (!parsed.success) throw new RuleError(issueMessage(parsed.error.issues[0], input, opts.path));
  const r = parsed.data;
  const expr = withPath(prefix, () => parseExpr(r.expr));
  if (opts.windows !== undefined) withPath(prefix, () => planRule(expr, opts.windows!));
  const advice = r.advice === undefined ? null : withPath(prefix, () => compileAdvice(r.advice!));
  if (opts.actions !== undefined) {
    const known = opts.actions;
    r.actions.forEach((a, i) => {
      if (!known.includes(a)) throw new RuleError(`${prefix}actions[${i}]: unknown action "${a}" (${known.join(", ") || "none configured"})`);
    });
  }
  return {
    name: r.name, exprText: r.expr, expr, selector: compileSelector(expr.selector), forMs: r.for, keepFiringForMs: r.keep_firing_for,
    severity: r.severity, labels: r.labels, advice, actions: r.actions,
  };
}

/** Runs a step whose RuleError messages start with the field ("expr: ..."), putting the rule's path in front. */
function withPath<T>(prefix: string, step: () => T): T {
  try {
    return step();
  } catch (e) {
    if (e instanceof RuleError && prefix !== "") throw new RuleError(prefix + e.message);
    throw e;
  }
}

/** A zod issue in weir's words, its path written as in the config ("rules[2].labels.team"). */
function issueMessage(issue: z.core.$ZodIssue, input: unknown, path: string | undefined): string {
  const where = issue.path.reduce<string>((p, k) => (typeof k === "number" ? `${p}[${k}]` : p === "" ? String(k) : `${p}.${String(k)}`), path ?? "");
  const whole = path ?? "rule";
  if (issue.code === "invalid_key") return `${where}: ${issue.issues[0]?.message ?? "bad key"}`;
  if (issue.code === "invalid_type" && (issue.expected === "array" || issue.expected === "object") && valueAt(input, issue.path) !== undefined) {
    return `${where === "" ? whole : where}: must be an ${issue.expected}`;
  }
  // issueText reads the value at the issue's path to tell "required" from "must be a": give it the one value under the one name.
  const one = where === "" ? [] : [where];
  return issueText({ ...issue, path: one } as z.core.$ZodIssue, where === "" ? input : { [where]: valueAt(input, issue.path) }, whole);
}

function safeDurationMs(s: string): number {
  try {
    return parseDurationMs(s);
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------
// Advice templates.

type AdvicePart = string | { field: "value" | "threshold" | "series" | "rule" } | { label: string };
/** A checked advice template: literal text and placeholders, in order. */
export interface AdviceTemplate { text: string; parts: AdvicePart[] }
export interface AdviceValues {
  value: AlertValue;
  threshold: number | string;
  series: string;
  rule: string;
  /** The series' tags and the rule's labels merged (the rule's win). */
  labels: Readonly<Record<string, string>>;
}

const placeholderRe = /\{\{\s*([^{}]*?)\s*\}\}/y;
const fields = new Set(["value", "threshold", "series", "rule"]);
const placeholderList = "{{value}}, {{threshold}}, {{series}}, {{rule}} or {{labels.<key>}}";

/**
 * Checks an advice template; throws a RuleError naming every unknown placeholder.
 * @example compileAdvice("Mean {{value}} s is over {{threshold}} s").parts.length // 5
 */
export function compileAdvice(text: string): AdviceTemplate {
  const parts: AdvicePart[] = [];
  const unknown: string[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf("{{", i);
    if (open < 0) break;
    literal += text.slice(i, open);
    placeholderRe.lastIndex = open;
    const m = placeholderRe.exec(text);
    if (m === null) throw new RuleError(`advice: "{{" at character ${open + 1} is not closed by "}}"`);
    const label = /^labels\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(m[1]);
    if (fields.has(m[1]) || label !== null) {
      if (literal !== "") parts.push(literal);
      literal = "";
      parts.push(label !== null ? { label: label[1] } : { field: m[1] as "value" });
    } else {
      unknown.push(m[0]);
    }
    i = open + m[0].length;
  }
  literal += text.slice(i);
  if (literal !== "") parts.push(literal);
  if (unknown.length > 0) {
    throw new RuleError(`advice: unknown placeholder${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (use ${placeholderList})`);
  }
  return { text, parts };
}

/**
 * The advice of one transition. A string template is checked first (compileAdvice).
 * @example renderAdvice("{{rule}}: {{value}} > {{threshold}}", { value: 3, threshold: 2, series: "x", rule: "r", labels: {} }) // "r: 3 > 2"
 */
export function renderAdvice(template: AdviceTemplate | string, values: AdviceValues): string {
  const t = typeof template === "string" ? compileAdvice(template) : template;
  let out = "";
  for (const p of t.parts) {
    if (typeof p === "string") out += p;
    else if ("label" in p) out += Object.hasOwn(values.labels, p.label) ? values.labels[p.label] : "";
    else if (p.field === "value") out += formatValue(values.value);
    else if (p.field === "threshold") out += formatValue(values.threshold);
    else out += values[p.field];
  }
  return out;
}

/** A value as advice shows it: at most 6 significant digits; "no data" for null. */
function formatValue(v: AlertValue): string {
  if (v === null) return "no data";
  if (typeof v === "string" || Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(6)));
}
