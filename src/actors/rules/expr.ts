/**
 * The expression language of alert rules (API.md "Rules and actions"),
 * parsed by hand into a typed AST, and the selector matcher.
 *
 * Grammar (spaces, tabs and line breaks allowed between any two tokens):
 *
 *   expr      = agg "(" selector ")" [ "over" duration ] cmp number
 *             | "anomaly" "(" selector ")" ">=" ( "warning" | "critical" )
 *             | "trend" "(" selector ")" "==" ( "rising" | "falling" | "stable" )
 *   agg       = "count" | "sum" | "min" | "max" | "avg" | "p50" | "p95" | "p99" | "rate"
 *   cmp       = ">" | ">=" | "<" | "<=" | "==" | "!="
 *   selector  = nameglob [ "{" [ matcher { "," matcher } [ "," ] ] "}" ]
 *   nameglob  = [A-Za-z_*] [A-Za-z0-9_.:*-]*     a metric name (API.md "Events") where * is any run
 *   matcher   = tagkey ( "=" | "!=" | "=~" | "!~" ) string
 *   tagkey    = [A-Za-z_] [A-Za-z0-9_]*
 *   string    = '"' { any character but " and \ | \\ | \" | \n } '"'
 *   duration  = digits ( "ms" | "s" | "m" | "h" | "d" )
 *   number    = [ "-" ] ( digits [ "." digits* ] | "." digits ) [ ( "e" | "E" ) [ "+" | "-" ] digits ]
 *
 * Matchers, as in Prometheus: `k="v"` the tag equals v, `k!="v"` it does
 * not, `k=~"glob"` it matches the glob as a whole, `k!~"glob"` it does not.
 * Tag globs are weir's usual ones (`*` any run, `?` one character; see
 * compileGlob); a metric-name glob has `*` only. A series without tag k
 * reads k as "", so `k!="v"` matches it and `k="v"` does not. Keywords and
 * aggregates are lower case. `rate` is count per second of the window.
 * Bounds: limits.ruleExprCharsMax characters, limits.ruleMatchersMax
 * matchers per selector, names, tag keys and values as long as an event's,
 * `over` within [limits.ruleWindowMsMin, limits.ruleWindowMsMax].
 *
 * An error is a RuleError "expr: at column <n>: <what>" naming the token at
 * fault (the column counts characters from the start of the text, from 1,
 * line breaks included), or "expr: "over 0s": <what>" for a window
 * outside [limits.ruleWindowMsMin, limits.ruleWindowMsMax].
 *
 * @example
 *   parseExpr('avg(complaint.response_time{team="support"}) over 30m > 172800');
 *   // { kind: "aggregate", agg: "avg", selector: { name: "complaint.response_time",
 *   //   matchers: [{ key: "team", op: "=", value: "support" }] },
 *   //   over: { text: "30m", ms: 1800000 }, op: ">", threshold: 172800 }
 *   const sel = compileSelector(parseExpr('trend(http.*{path=~"/api/*"}) == rising').selector);
 *   selectorMatches(sel, "http.latency", { path: "/api/v1" }); // true
 */
import { parseDurationMs } from "../window-spec.ts";
import { WeirError } from "../../runtime/errors.ts";
import { limits } from "../../runtime/limits.ts";
import { compileGlob, type GlobMatcher } from "../../runtime/series.ts";

/** A rule that cannot be parsed or run as written; the message names the part at fault. */
export class RuleError extends WeirError {
  override name = "RuleError";
  constructor(message: string) {
    super("bad_rule", message);
  }
}

export const aggregates = ["count", "sum", "min", "max", "avg", "p50", "p95", "p99", "rate"] as const;
export type Aggregate = (typeof aggregates)[number];
export const comparisons = [">", ">=", "<", "<=", "==", "!="] as const;
export type Comparison = (typeof comparisons)[number];
export type MatchOp = "=" | "!=" | "=~" | "!~";
export const anomalySeverities = ["warning", "critical"] as const;
export type AnomalySeverity = (typeof anomalySeverities)[number];
export const trendClasses = ["rising", "falling", "stable"] as const;
export type TrendCondition = (typeof trendClasses)[number];

export interface TagMatcher { key: string; op: MatchOp; value: string }
export interface Selector { name: string; matchers: TagMatcher[] }
/** A window length as written and in ms. */
export interface Duration { text: string; ms: number }

export interface AggregateExpr {
  kind: "aggregate";
  agg: Aggregate;
  selector: Selector;
  /** null: the rule reads the base window (see plan.ts). */
  over: Duration | null;
  op: Comparison;
  threshold: number;
}
export interface AnomalyExpr { kind: "anomaly"; selector: Selector; severity: AnomalySeverity }
export interface TrendExpr { kind: "trend"; selector: Selector; class: TrendCondition }
export type Expr = AggregateExpr | AnomalyExpr | TrendExpr;

const functionList = [...aggregates, "anomaly", "trend"].join(", ");
const nameChar = /[A-Za-z0-9_.:*-]/;
const tagKeyChar = /[A-Za-z0-9_]/;
const identChar = /[A-Za-z0-9_]/;
const spaceChar = /[ \t\r\n]/;
const durationRe = /^(\d+)([a-z]*)$/;
const durationUnits = ["ms", "s", "m", "h", "d"];
const numberRe = /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
/** Matcher operators, two-character ones first so "!=" is not read as "!". */
const matchOps: readonly MatchOp[] = ["=~", "!~", "!=", "="];
const comparisonsLongestFirst: readonly Comparison[] = [">=", "<=", "==", "!=", ">", "<"];

/**
 * Parses one rule expression (grammar in the module comment).
 * @example parseExpr("rate(http.requests) over 1m >= 100").over // { text: "1m", ms: 60000 }
 */
export function parseExpr(text: string): Expr {
  if (text.length > limits.ruleExprCharsMax) throw new RuleError(`expr: ${text.length} characters, at most ${limits.ruleExprCharsMax}`);
  const c: Cursor = new Cursor(text); // typed, so fail()'s never narrows
  c.skip();
  if (c.atEnd()) throw new RuleError("expr: empty (e.g. avg(cpu.load) over 5m > 0.9)");
  const fnAt = c.pos;
  const fn = c.run(identChar);
  if (fn === "") c.fail(fnAt, `expected an aggregate (${functionList}), found ${c.found()}`);
  if (fn !== "anomaly" && fn !== "trend" && !(aggregates as readonly string[]).includes(fn)) {
    const lower = fn.toLowerCase();
    if (lower !== fn && (lower === "anomaly" || lower === "trend" || (aggregates as readonly string[]).includes(lower))) {
      c.fail(fnAt, `unknown aggregate "${fn}" (aggregates are lower case: ${lower})`);
    }
    c.fail(fnAt, `unknown aggregate "${fn}" (one of ${functionList})`);
  }
  c.skip();
  c.expect("(", `expected "(" after "${fn}"`);
  const selector = parseSelector(c);
  c.skip();
  c.expect(")", `expected ")" after the selector`);
  let expr: Expr;
  if (fn === "anomaly") expr = { kind: "anomaly", selector, severity: parseKeywordTail(c, fn, ">=", anomalySeverities, "severity") };
  else if (fn === "trend") expr = { kind: "trend", selector, class: parseKeywordTail(c, fn, "==", trendClasses, "trend class") };
  else expr = parseAggregateTail(c, fn as Aggregate, selector);
  c.skip();
  if (!c.atEnd()) c.fail(c.pos, `unexpected ${c.found()} after the end of the expression`);
  return expr;
}

function parseSelector(c: Cursor): Selector {
  c.skip();
  const nameAt = c.pos;
  const name = c.run(nameChar);
  if (name === "") c.fail(nameAt, `expected a metric name or glob, found ${c.found()}`);
  if (!/^[A-Za-z_*]/.test(name)) c.fail(nameAt, `metric name "${name}" must start with a letter, "_" or "*"`);
  if (name.length > limits.nameCharsMax) c.fail(nameAt, `metric name of ${name.length} characters, at most ${limits.nameCharsMax}`);
  if (c.peek() === "?") c.fail(c.pos, `"?" is not a wildcard in a metric name (use *)`);
  c.skip();
  const matchers: TagMatcher[] = [];
  if (c.peek() !== "{") return { name, matchers };
  c.pos++;
  for (;;) {
    c.skip();
    if (c.peek() === "}") break;
    if (matchers.length === limits.ruleMatchersMax) c.fail(c.pos, `more than ${limits.ruleMatchersMax} tag matchers`);
    matchers.push(parseMatcher(c));
    c.skip();
    if (c.peek() === ",") {
      c.pos++;
      continue;
    }
    if (c.peek() !== "}") c.fail(c.pos, `expected "," or "}" after a tag matcher, found ${c.found()}`);
    break;
  }
  c.pos++;
  return { name, matchers };
}

function parseMatcher(c: Cursor): TagMatcher {
  const keyAt = c.pos;
  const key = c.run(tagKeyChar);
  if (key === "") c.fail(keyAt, `expected a tag key or "}", found ${c.found()}`);
  if (!/^[A-Za-z_]/.test(key)) c.fail(keyAt, `tag key "${key}" must start with a letter or "_"`);
  if (key.length > limits.tagKeyCharsMax) c.fail(keyAt, `tag key of ${key.length} characters, at most ${limits.tagKeyCharsMax}`);
  c.skip();
  const opAt = c.pos;
  if (c.text.startsWith("==", opAt)) c.fail(opAt, `"==" is not a matcher: use =, !=, =~ or !~`);
  const op = matchOps.find((o) => c.text.startsWith(o, opAt));
  if (op === undefined) c.fail(opAt, `expected a matcher (=, !=, =~ or !~) after tag key "${key}", found ${c.found()}`);
  c.pos += op.length;
  c.skip();
  const valueAt = c.pos;
  if (c.peek() !== '"') c.fail(valueAt, `expected a quoted value after "${op}", found ${c.found()}`);
  const value = c.string();
  if (value.length > limits.tagValueCharsMax) c.fail(valueAt, `tag value of ${value.length} characters, at most ${limits.tagValueCharsMax}`);
  return { key, op, value };
}

function parseAggregateTail(c: Cursor, agg: Aggregate, selector: Selector): AggregateExpr {
  c.skip();
  let over: Duration | null = null;
  if (c.peekWord() === "over") {
    c.run(identChar);
    over = parseOver(c);
    c.skip();
  }
  const opAt = c.pos;
  const op = comparisonsLongestFirst.find((o) => c.text.startsWith(o, opAt));
  if (op === undefined && c.peek() === "=") c.fail(opAt, `"=" is not a comparison: use == (or >, >=, <, <=, !=)`);
  if (op === undefined) {
    const after = over === null ? `"${agg}(...)"` : `"over ${over.text}"`;
    c.fail(opAt, `expected a comparison (>, >=, <, <=, ==, !=) after ${after}, found ${c.found()}`);
  }
  c.pos += op.length;
  c.skip();
  const numAt = c.pos;
  numberRe.lastIndex = numAt;
  const m = numberRe.exec(c.text);
  if (m === null || identChar.test(c.text[numAt + m[0].length] ?? "")) c.fail(numAt, `expected a number after "${op}"`);
  const threshold = Number(m[0]);
  if (!Number.isFinite(threshold)) c.fail(numAt, `number "${m[0]}" is out of range`);
  c.pos += m[0].length;
  return { kind: "aggregate", agg, selector, over, op, threshold };
}

function parseOver(c: Cursor): Duration {
  c.skip();
  const at = c.pos;
  const text = c.run(/[A-Za-z0-9_.]/); // with ".", so "1.5m" is shown whole
  if (text === "") c.fail(at, `expected a duration after "over" (like 30s or 5m), found ${c.found()}`);
  const m = durationRe.exec(text);
  if (m === null) c.fail(at, `"over ${text}": expected a whole number with a unit (ms, s, m, h or d), like 30s or 5m`);
  if (m[2] === "") c.fail(at, `"over ${text}" needs a unit (ms, s, m, h or d)`);
  if (!durationUnits.includes(m[2])) c.fail(at, `"over ${text}": unknown unit "${m[2]}" (ms, s, m, h or d)`);
  // A count past the maximum in ms is past it in any unit (and may not be a safe integer once multiplied).
  const ms = Number(m[1]) > limits.ruleWindowMsMax ? Infinity : parseDurationMs(text);
  if (ms < limits.ruleWindowMsMin) throw new RuleError(`expr: "over ${text}": the window must be at least ${formatDurationMs(limits.ruleWindowMsMin)}`);
  if (ms > limits.ruleWindowMsMax) throw new RuleError(`expr: "over ${text}": the window must be at most ${formatDurationMs(limits.ruleWindowMsMax)}`);
  return { text, ms };
}

/** `>= warning` after anomaly(...), `== rising` after trend(...): one operator, one keyword of a list. */
function parseKeywordTail<K extends string>(c: Cursor, fn: string, op: string, words: readonly K[], what: string): K {
  c.skip();
  const opAt = c.pos;
  if (c.peekWord() === "over") c.fail(opAt, `${fn}(...) takes no "over": it reads the series' ${fn} as the windows close`);
  const found = comparisonsLongestFirst.find((o) => c.text.startsWith(o, opAt));
  if (found === undefined) c.fail(opAt, `expected "${op}" after "${fn}(...)", found ${c.found()}`);
  if (found !== op) c.fail(opAt, `${fn}(...) is compared with "${op}" only, found "${found}"`);
  c.pos += op.length;
  c.skip();
  const wordAt = c.pos;
  const word = c.run(identChar);
  const list = words.length === 2 ? `${words[0]} or ${words[1]}` : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
  if (word === "") c.fail(wordAt, `expected ${list} after "${op}", found ${c.found()}`);
  if (!(words as readonly string[]).includes(word)) c.fail(wordAt, `unknown ${what} "${word}" (${list})`);
  return word as K;
}

/** Position in the text and the small reads the parser needs; fail() throws the positioned RuleError. */
class Cursor {
  pos = 0;
  constructor(readonly text: string) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string {
    return this.text[this.pos] ?? "";
  }

  skip(): void {
    while (this.pos < this.text.length && spaceChar.test(this.text[this.pos])) this.pos++;
  }

  /** The longest run of characters matching `ch` from here (consumed). */
  run(ch: RegExp): string {
    const from = this.pos;
    while (this.pos < this.text.length && ch.test(this.text[this.pos])) this.pos++;
    return this.text.slice(from, this.pos);
  }

  /** The identifier at the cursor, not consumed. */
  peekWord(): string {
    const from = this.pos;
    const w = this.run(identChar);
    this.pos = from;
    return w;
  }

  expect(ch: string, message: string): void {
    if (this.peek() !== ch) this.fail(this.pos, `${message}, found ${this.found()}`);
    this.pos++;
  }

  /** The double-quoted string at the cursor, unescaped (\\, \" and \n). */
  string(): string {
    const at = this.pos++;
    let out = "";
    for (;;) {
      if (this.atEnd()) this.fail(at, "unterminated string");
      const ch = this.text[this.pos++];
      if (ch === '"') return out;
      if (ch !== "\\") {
        out += ch;
        continue;
      }
      const esc = this.text[this.pos++] ?? "";
      if (esc === "\\" || esc === '"') out += esc;
      else if (esc === "n") out += "\n";
      else this.fail(this.pos - 2, `unknown escape "\\${esc}" (use \\\\, \\" or \\n)`);
    }
  }

  /** What stands at the cursor, for messages: "the end", or the word or character there, quoted. */
  found(): string {
    if (this.atEnd()) return "the end";
    const from = this.pos;
    const word = this.run(identChar);
    this.pos = from;
    return `"${word === "" ? this.text[from] : word}"`;
  }

  fail(at: number, message: string): never {
    throw new RuleError(`expr: at column ${at + 1}: ${message}`);
  }
}

/** A selector with its globs compiled once; see selectorMatches. */
export interface CompiledSelector {
  /** The exact name, or null when the name is a glob. */
  name: string | null;
  nameRe: GlobMatcher | null;
  matchers: CompiledMatcher[];
}
interface CompiledMatcher { key: string; negate: boolean; value: string; re: GlobMatcher | null }

/**
 * Compiles a selector's globs once, for selectorMatches.
 * @example compileSelector({ name: "cpu.*", matchers: [] })
 */
export function compileSelector(sel: Selector): CompiledSelector {
  const glob = sel.name.includes("*");
  return {
    name: glob ? null : sel.name,
    nameRe: glob ? compileGlob(sel.name) : null,
    matchers: sel.matchers.map((m) => ({
      key: m.key,
      negate: m.op === "!=" || m.op === "!~",
      value: m.value,
      re: m.op === "=~" || m.op === "!~" ? compileGlob(m.value) : null,
    })),
  };
}

/**
 * Whether a series (name + tags) is one the selector picks; a missing tag reads as "".
 * @example selectorMatches(compileSelector(parseExpr('count(a{k!="x"}) > 1').selector), "a", {}) // true
 */
export function selectorMatches(sel: CompiledSelector, name: string, tags: Readonly<Record<string, string>>): boolean {
  if (sel.name !== null ? sel.name !== name : !sel.nameRe!.test(name)) return false;
  for (const m of sel.matchers) {
    const v = Object.hasOwn(tags, m.key) ? tags[m.key] : "";
    const hit = m.re === null ? v === m.value : m.re.test(v);
    if (hit === m.negate) return false;
  }
  return true;
}

const unitsMs: ReadonlyArray<[string, number]> = [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]];

/**
 * A duration in the largest unit that divides it exactly, for messages.
 * @example formatDurationMs(1_800_000) // "30m"
 */
export function formatDurationMs(ms: number): string {
  for (const [unit, size] of unitsMs) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
