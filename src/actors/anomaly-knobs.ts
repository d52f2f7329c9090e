/**
 * Anomaly knobs per series: the config file's `anomalies:` list, validated,
 * and the lookup that gives a series (name + tags) its knobs. The first
 * entry whose `match` picks the series wins; a knob an entry leaves out is
 * the default (anomalyDefaults); a series no entry picks keeps every
 * default.
 *
 * An entry (API.md "Configuration"): `match`, a selector as a rule's
 * anomaly(...) takes one (a name glob, then optionally tag matchers
 * `{k="v", k!="v", k=~"glob", k!~"glob"}`, rules/expr.ts); `warning` and
 * `critical`, the |z| of each severity (within [limits.anomalyZMin,
 * limits.anomalyZMax], warning below critical); `cooldown`, a duration like
 * a rule's `for` (0 to 7d); `baseline`, the values the spread rests on
 * (a whole number within [limits.anomalyBaselineValuesMin,
 * limits.anomalyBaselineValuesMax]); `sustained`, the z of the sustained
 * test (a |z| knob); `novelty`, within [0, 1]; `season`, values per cycle
 * (0: none, else above twice the seasonal slack, at most
 * limits.anomalySeasonValuesMax); `cooldown_values`, values after an alert
 * (0 to limits.anomalyCooldownValuesMax); `cooldown_growth`, how much a
 * series' own recent alerts lengthen that cooldown (0 to limits.anomalyCooldownGrowthMax;
 * 0 for a fixed one). Any other field is an error. Errors
 * are AnomalyKnobErrors naming the path of the bad key:
 * "anomalies[1].warning: must be ≥ 1".
 *
 * The list travels as plain data (AnomalyKnobRule[]: the engine's config,
 * the partition workers' start data); AnomalyKnobTable compiles it where
 * series are resolved (each partition as it learns a series, the series
 * listing for the cooldown).
 *
 * @example
 *   const rules = parseAnomalyKnobs([{ match: 'payments.*{region="eu"}', warning: 4, cooldown: "5m" }]);
 *   new AnomalyKnobTable(rules).knobsOf("payments.latency", { region: "eu" });
 *   // { warningZ: 4, criticalZ: 6.5, cooldownMs: 300000, window: 200, sustainedZ: 3.5, novelty: 0.6, season: 288, cooldownValues: 60, cooldownGrowth: 0.5 }
 */
import { strict as assert } from "node:assert";
import { z } from "zod";
import { WeirError } from "../runtime/errors.ts";
import { issueText } from "../runtime/issue-text.ts";
import { limits } from "../runtime/limits.ts";
import { anomalyDefaults, type AnomalyKnobs, seasonSlackValues } from "./anomaly-tuning.ts";
import { type CompiledSelector, compileSelector, parseExpr, RuleError, selectorMatches } from "./rules/expr.ts";
import { ruleSchema } from "./rules/rule.ts";

/** An `anomalies:` entry that cannot be used as written; the message names the path of the bad key. */
export class AnomalyKnobError extends WeirError {
  override name = "AnomalyKnobError";
  constructor(message: string) {
    super("bad_config", message);
  }
}

/** One validated entry: its selector as written, and every knob (the defaults filled in). */
export interface AnomalyKnobRule { match: string; knobs: AnomalyKnobs }

assert(anomalyDefaults.warningZ >= limits.anomalyZMin && anomalyDefaults.criticalZ <= limits.anomalyZMax, "the default |z| within the knobs' bounds");
assert(anomalyDefaults.window >= limits.anomalyBaselineValuesMin && anomalyDefaults.window <= limits.anomalyBaselineValuesMax, "the default baseline within its bounds");

const zKnob = z.number().min(limits.anomalyZMin).max(limits.anomalyZMax);

/** An entry as written; field names as in the config file. */
const entrySchema = z.strictObject({
  match: z.string().max(limits.anomalyMatchCharsMax),
  warning: zKnob.optional(),
  critical: zKnob.optional(),
  // A rule's `for` grammar and bound: "30s", "5m", 0; a unit is required.
  cooldown: ruleSchema.shape.for.unwrap().optional(),
  baseline: z.number().min(limits.anomalyBaselineValuesMin).max(limits.anomalyBaselineValuesMax).refine(Number.isInteger, "must be a whole number").optional(),
  sustained: zKnob.optional(),
  novelty: z.number().min(0).max(1).optional(),
  season: z.number().min(0).max(limits.anomalySeasonValuesMax).refine(Number.isInteger, "must be a whole number").refine((v) => v === 0 || v > 2 * seasonSlackValues, `must be 0 (none) or above ${2 * seasonSlackValues}`).optional(),
  cooldown_values: z.number().min(0).max(limits.anomalyCooldownValuesMax).refine(Number.isInteger, "must be a whole number").optional(),
  cooldown_growth: z.number().min(0).max(limits.anomalyCooldownGrowthMax).optional(),
});

/**
 * Validates the `anomalies:` list (undefined or null: none); throws an AnomalyKnobError naming the path of the bad key.
 * @example parseAnomalyKnobs([{ match: "cpu.*", warning: 4 }])[0].knobs.warningZ // 4
 */
export function parseAnomalyKnobs(defs: unknown, path = "anomalies"): AnomalyKnobRule[] {
  if (defs === undefined || defs === null) return [];
  if (!Array.isArray(defs)) throw new AnomalyKnobError(`${path}: must be a list of {match, warning, critical, cooldown, baseline, sustained, novelty, season, cooldown_values, cooldown_growth}`);
  if (defs.length > limits.anomalyKnobsMax) throw new AnomalyKnobError(`${path}: at most ${limits.anomalyKnobsMax} entries`);
  return defs.map((def, i) => parseEntry(def, `${path}[${i}]`));
}

function parseEntry(def: unknown, where: string): AnomalyKnobRule {
  const parsed = entrySchema.safeParse(def);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.path.length === 0 && issue.code !== "unrecognized_keys") throw new AnomalyKnobError(`${where}: must be a mapping {match, warning, critical, cooldown, baseline, sustained, novelty, season, cooldown_values, cooldown_growth}`);
    throw new AnomalyKnobError(`${where}.${issueText(issue, def, "")}`);
  }
  const e = parsed.data;
  parseMatch(e.match, `${where}.match`);
  const d = anomalyDefaults;
  const knobs: AnomalyKnobs = {
    warningZ: e.warning ?? d.warningZ, criticalZ: e.critical ?? d.criticalZ,
    cooldownMs: e.cooldown ?? d.cooldownMs, window: e.baseline ?? d.window,
    sustainedZ: e.sustained ?? d.sustainedZ, novelty: e.novelty ?? d.novelty, season: e.season ?? d.season,
    cooldownValues: e.cooldown_values ?? d.cooldownValues, cooldownGrowth: e.cooldown_growth ?? d.cooldownGrowth,
  };
  if (knobs.warningZ >= knobs.criticalZ) {
    const dflt = (given: unknown) => (given === undefined ? ", the default" : "");
    if (e.warning !== undefined) throw new AnomalyKnobError(`${where}.warning: ${e.warning} must be below critical (${knobs.criticalZ}${dflt(e.critical)})`);
    throw new AnomalyKnobError(`${where}.critical: ${e.critical} must be above warning (${knobs.warningZ}${dflt(e.warning)})`);
  }
  return { match: e.match, knobs };
}

// The rules' parser (expr.ts) reads the text where a rule's anomaly(...) takes its selector, so knobs and rules
// share one grammar and one matcher; its columns are shifted back to the text's own. An error about the text
// reads the same whatever follows it, so the text is also read inside trend(...): when the two errors differ,
// the parser went past a ")" in the text, and the text as a whole is named instead.
const wrappers: ReadonlyArray<[string, string]> = [["anomaly(", ") >= warning"], ["trend(", ") == rising"]];
const positioned = /^expr: at column (\d+): (.*)$/s;

/** The selector a `match` text names, compiled; an AnomalyKnobError at `where` when it is not one. */
function parseMatch(text: string, where: string): CompiledSelector {
  const [open, close] = wrappers[0];
  try {
    // The wrapper's tail ends the text, so a parse that succeeds read the text as exactly one selector.
    return compileSelector(parseExpr(open + text + close).selector);
  } catch (e) {
    if (!(e instanceof RuleError)) throw e;
    const [first, second] = wrappers.map(([o, c]) => errorIn(o, text, c));
    if (first === null || first !== second) {
      throw new AnomalyKnobError(`${where}: "${text}" is not a selector (a name glob, then optionally {k="v", k=~"glob"})`);
    }
    throw new AnomalyKnobError(`${where}: ${first}`);
  }
}

/** The error of parsing the text between `open` and `close`, as "at column <n of the text>: <what>"; null when none or unpositioned. */
function errorIn(open: string, text: string, close: string): string | null {
  try {
    parseExpr(open + text + close);
    return null;
  } catch (e) {
    if (!(e instanceof RuleError)) throw e;
    const m = positioned.exec(e.message);
    if (m === null) return null;
    const column = Number(m[1]) - open.length;
    if (column < 1 || column > text.length + 1) return null;
    let what = m[2].replace(/^expected "\)" after the selector/, "expected the end after the selector");
    // Just past the text the parser finds the wrapper's ")": for the text, that is its end.
    if (column === text.length + 1) what = what.replace(/found "\)"$/, "found the end");
    return `at column ${column}: ${what}`;
  }
}

/**
 * The entries compiled, for resolving series: first match wins.
 * @example new AnomalyKnobTable(cfg.anomalies).knobsOf("cpu.load", { host: "a" }) // null: the defaults
 */
export class AnomalyKnobTable {
  private readonly entries: ReadonlyArray<{ selector: CompiledSelector; knobs: AnomalyKnobs }>;

  /** `rules` as parseAnomalyKnobs gives them (a bad match throws here as it does there). */
  constructor(rules: readonly AnomalyKnobRule[]) {
    this.entries = rules.map((r, i) => ({ selector: parseMatch(r.match, `anomalies[${i}].match`), knobs: r.knobs }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The knobs of the first entry picking the series, or null when none does (it keeps the defaults). */
  knobsOf(name: string, tags: Readonly<Record<string, string>>): AnomalyKnobs | null {
    for (const e of this.entries) if (selectorMatches(e.selector, name, tags)) return e.knobs;
    return null;
  }
}
