import { describe, expect, test } from "bun:test";
import { compileSelector, type Expr, parseExpr, RuleError, selectorMatches } from "../src/actors/rules/expr.ts";
import { planRule, type RuleWindows } from "../src/actors/rules/plan.ts";
import { compileAdvice, parseRule, renderAdvice } from "../src/actors/rules/rule.ts";
import { parseWindowSpecs } from "../src/actors/window-spec.ts";
import { WeirError } from "../src/runtime/errors.ts";

/** The message of the RuleError `f` throws (failing the test if it throws anything else or nothing). */
function ruleErrorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RuleError);
    expect((e as WeirError).code).toBe("bad_rule");
    return (e as Error).message;
  }
  throw new Error("no RuleError thrown");
}

const sel = (name: string, ...matchers: Array<[string, "=" | "!=" | "=~" | "!~", string]>) => ({
  name, matchers: matchers.map(([key, op, value]) => ({ key, op, value })),
});

describe("rules - expressions accepted", () => {
  const cases: Array<[string, Expr]> = [
    [
      'avg(complaint.response_time{team="support"}) over 30m > 172800',
      { kind: "aggregate", agg: "avg", selector: sel("complaint.response_time", ["team", "=", "support"]), over: { text: "30m", ms: 1_800_000 }, op: ">", threshold: 172800 },
    ],
    ["count(page.load) >= 1", { kind: "aggregate", agg: "count", selector: sel("page.load"), over: null, op: ">=", threshold: 1 }],
    ["sum(x) < -2.5", { kind: "aggregate", agg: "sum", selector: sel("x"), over: null, op: "<", threshold: -2.5 }],
    ["min(x) <= .5", { kind: "aggregate", agg: "min", selector: sel("x"), over: null, op: "<=", threshold: 0.5 }],
    ["max(x) == 1e3", { kind: "aggregate", agg: "max", selector: sel("x"), over: null, op: "==", threshold: 1000 }],
    ["p50(x) != 0", { kind: "aggregate", agg: "p50", selector: sel("x"), over: null, op: "!=", threshold: 0 }],
    ["p95(x) over 60s > 250", { kind: "aggregate", agg: "p95", selector: sel("x"), over: { text: "60s", ms: 60_000 }, op: ">", threshold: 250 }],
    ["p99(x) over 1h > 1.", { kind: "aggregate", agg: "p99", selector: sel("x"), over: { text: "1h", ms: 3_600_000 }, op: ">", threshold: 1 }],
    ["rate(http.requests) over 1500ms > 2E-1", { kind: "aggregate", agg: "rate", selector: sel("http.requests"), over: { text: "1500ms", ms: 1500 }, op: ">", threshold: 0.2 }],
    ["avg(x) over 7d > 0", { kind: "aggregate", agg: "avg", selector: sel("x"), over: { text: "7d", ms: 7 * 86_400_000 }, op: ">", threshold: 0 }],
    [
      '\tavg ( *.latency:p { host =~ "web-*" , dc != "x", env!~"te?t", } )over 5m>=3 ',
      {
        kind: "aggregate", agg: "avg", selector: sel("*.latency:p", ["host", "=~", "web-*"], ["dc", "!=", "x"], ["env", "!~", "te?t"]),
        over: { text: "5m", ms: 300_000 }, op: ">=", threshold: 3,
      },
    ],
    ['count(_a-b.c{k="say \\"hi\\"\\n\\\\"}) > 0', { kind: "aggregate", agg: "count", selector: sel("_a-b.c", ["k", "=", 'say "hi"\n\\']), over: null, op: ">", threshold: 0 }],
    ["count(x)\n  > 0\r\n", { kind: "aggregate", agg: "count", selector: sel("x"), over: null, op: ">", threshold: 0 }],
    ["count(x{}) > 0", { kind: "aggregate", agg: "count", selector: sel("x"), over: null, op: ">", threshold: 0 }],
    ["anomaly(sensor.*) >= warning", { kind: "anomaly", selector: sel("sensor.*"), severity: "warning" }],
    ['anomaly(cpu{host="a"}) >= critical', { kind: "anomaly", selector: sel("cpu", ["host", "=", "a"]), severity: "critical" }],
    ["trend(disk.used) == rising", { kind: "trend", selector: sel("disk.used"), class: "rising" }],
    ["trend(*) == falling", { kind: "trend", selector: sel("*"), class: "falling" }],
    ["trend(x) == stable", { kind: "trend", selector: sel("x"), class: "stable" }],
  ];
  for (const [text, ast] of cases) {
    test(`rules - parses ${JSON.stringify(text)}`, () => {
      expect(parseExpr(text)).toEqual(ast);
    });
  }
});

describe("rules - expressions rejected, naming the part at fault", () => {
  const k17 = Array.from({ length: 17 }, (_, i) => `k${i}="v"`).join(",");
  const cases: Array<[string, string]> = [
    ["", "expr: empty (e.g. avg(cpu.load) over 5m > 0.9)"],
    ["x".repeat(1025), "expr: 1025 characters, at most 1024"],
    ["median(x) > 1", 'expr: at column 1: unknown aggregate "median" (one of count, sum, min, max, avg, p50, p95, p99, rate, anomaly, trend)'],
    ["AVG(x) > 1", 'expr: at column 1: unknown aggregate "AVG" (aggregates are lower case: avg)'],
    ["> 5", 'expr: at column 1: expected an aggregate (count, sum, min, max, avg, p50, p95, p99, rate, anomaly, trend), found ">"'],
    ["avg x > 1", 'expr: at column 5: expected "(" after "avg", found "x"'],
    ["avg(", "expr: at column 5: expected a metric name or glob, found the end"],
    ["avg() > 1", 'expr: at column 5: expected a metric name or glob, found ")"'],
    ["avg(9lives) > 1", 'expr: at column 5: metric name "9lives" must start with a letter, "_" or "*"'],
    [`avg(${"a".repeat(129)}) > 1`, "expr: at column 5: metric name of 129 characters, at most 128"],
    ["avg(x?) > 1", 'expr: at column 6: "?" is not a wildcard in a metric name (use *)'],
    ["avg(x y) > 1", 'expr: at column 7: expected ")" after the selector, found "y"'],
    ["avg(x{) > 1", 'expr: at column 7: expected a tag key or "}", found ")"'],
    ['avg(x{1a="b"}) > 1', 'expr: at column 7: tag key "1a" must start with a letter or "_"'],
    [`avg(x{${"k".repeat(65)}="a"}) > 1`, "expr: at column 7: tag key of 65 characters, at most 64"],
    ["avg(x{team}) > 1", 'expr: at column 11: expected a matcher (=, !=, =~ or !~) after tag key "team", found "}"'],
    ['avg(x{team=="a"}) > 1', 'expr: at column 11: "==" is not a matcher: use =, !=, =~ or !~'],
    ['avg(x{team~"a"}) > 1', 'expr: at column 11: expected a matcher (=, !=, =~ or !~) after tag key "team", found "~"'],
    ["avg(x{team=a}) > 1", 'expr: at column 12: expected a quoted value after "=", found "a"'],
    ["avg(x{team='a'}) > 1", `expr: at column 12: expected a quoted value after "=", found "'"`],
    ['avg(x{team="a) > 1', "expr: at column 12: unterminated string"],
    ['avg(x{team="a\\tb"}) > 1', 'expr: at column 14: unknown escape "\\t" (use \\\\, \\" or \\n)'],
    [`avg(x{k="${"v".repeat(257)}"}) > 1`, "expr: at column 9: tag value of 257 characters, at most 256"],
    ['avg(x{team="a" host="b"}) > 1', 'expr: at column 16: expected "," or "}" after a tag matcher, found "host"'],
    [`avg(x{${k17}}) > 1`, "expr: at column 125: more than 16 tag matchers"],
    ["avg(x) 5", 'expr: at column 8: expected a comparison (>, >=, <, <=, ==, !=) after "avg(...)", found "5"'],
    ["avg(x) = 5", 'expr: at column 8: "=" is not a comparison: use == (or >, >=, <, <=, !=)'],
    ["avg(x) >", 'expr: at column 9: expected a number after ">"'],
    ["avg(x) > abc", 'expr: at column 10: expected a number after ">"'],
    ["avg(x) > 5abc", 'expr: at column 10: expected a number after ">"'],
    ["avg(x) > 1e999", 'expr: at column 10: number "1e999" is out of range'],
    ["avg(x) > 5 5", 'expr: at column 12: unexpected "5" after the end of the expression'],
    ["rate(x) > 5 and rate(y) > 5", 'expr: at column 13: unexpected "and" after the end of the expression'],
    ["avg(x) over > 5", 'expr: at column 13: expected a duration after "over" (like 30s or 5m), found ">"'],
    ["avg(x) over 30 > 5", 'expr: at column 13: "over 30" needs a unit (ms, s, m, h or d)'],
    ["avg(x) over 30y > 5", 'expr: at column 13: "over 30y": unknown unit "y" (ms, s, m, h or d)'],
    ["avg(x) over 1.5m > 5", 'expr: at column 13: "over 1.5m": expected a whole number with a unit (ms, s, m, h or d), like 30s or 5m'],
    ["avg(x) over 0s > 5", 'expr: "over 0s": the window must be at least 1s'],
    ["avg(x) over 999ms > 5", 'expr: "over 999ms": the window must be at least 1s'],
    ["avg(x) over 8d > 5", 'expr: "over 8d": the window must be at most 7d'],
    ["avg(x) over 99999999999999999999d > 5", 'expr: "over 99999999999999999999d": the window must be at most 7d'],
    ["avg(x) over 5m", 'expr: at column 15: expected a comparison (>, >=, <, <=, ==, !=) after "over 5m", found the end'],
    ["avg(x) over 5m over 5m > 1", 'expr: at column 16: expected a comparison (>, >=, <, <=, ==, !=) after "over 5m", found "over"'],
    ["anomaly(x)", 'expr: at column 11: expected ">=" after "anomaly(...)", found the end'],
    ["anomaly(x) > warning", 'expr: at column 12: anomaly(...) is compared with ">=" only, found ">"'],
    ["anomaly(x) >= high", 'expr: at column 15: unknown severity "high" (warning or critical)'],
    ["anomaly(x) >=", 'expr: at column 14: expected warning or critical after ">=", found the end'],
    ["anomaly(x) over 5m >= warning", 'expr: at column 12: anomaly(...) takes no "over": it reads the series\' anomaly as the windows close'],
    ["trend(x) != rising", 'expr: at column 10: trend(...) is compared with "==" only, found "!="'],
    ["trend(x) == flat", 'expr: at column 13: unknown trend class "flat" (rising, falling or stable)'],
    ["trend(x) == unknown", 'expr: at column 13: unknown trend class "unknown" (rising, falling or stable)'],
    ["trend(x) ==", 'expr: at column 12: expected rising, falling or stable after "==", found the end'],
  ];
  for (const [text, message] of cases) {
    test(`rules - rejects ${JSON.stringify(text.length > 50 ? text.slice(0, 47) + "..." : text)}`, () => {
      expect(ruleErrorOf(() => parseExpr(text))).toBe(message);
    });
  }
  test("rules - at least 25 rejected expressions are pinned", () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });
});

describe("rules - selector matching", () => {
  const matches = (expr: string, name: string, tags: Record<string, string> = {}) =>
    selectorMatches(compileSelector(parseExpr(expr).selector), name, tags);

  test("rules - a plain name matches itself only", () => {
    expect(matches("count(cpu.load) > 0", "cpu.load")).toBe(true);
    expect(matches("count(cpu.load) > 0", "cpu.load2")).toBe(false);
    expect(matches("count(cpu.load) > 0", "cpuXload")).toBe(false); // "." is literal
  });

  test("rules - * in the name is any run, the whole name must match", () => {
    expect(matches("count(cpu.*) > 0", "cpu.load")).toBe(true);
    expect(matches("count(cpu.*) > 0", "cpu.")).toBe(true);
    expect(matches("count(cpu.*) > 0", "gpu.load")).toBe(false);
    expect(matches("count(*.p99) > 0", "http.latency.p99")).toBe(true);
    expect(matches("count(*) > 0", "anything")).toBe(true);
  });

  test("rules - = and != compare the whole value; a missing tag reads as empty", () => {
    const e = 'count(x{team="support"}) > 0';
    expect(matches(e, "x", { team: "support" })).toBe(true);
    expect(matches(e, "x", { team: "support2" })).toBe(false);
    expect(matches(e, "x", {})).toBe(false);
    expect(matches('count(x{team!="sales"}) > 0', "x", { team: "support" })).toBe(true);
    expect(matches('count(x{team!="sales"}) > 0', "x", { team: "sales" })).toBe(false);
    expect(matches('count(x{team!="sales"}) > 0', "x", {})).toBe(true);
    expect(matches('count(x{team=""}) > 0', "x", {})).toBe(true);
  });

  test("rules - =~ and !~ match tag globs (* and ?) against the whole value", () => {
    expect(matches('count(x{path=~"/api/*"}) > 0', "x", { path: "/api/v1/events" })).toBe(true);
    expect(matches('count(x{path=~"/api/*"}) > 0', "x", { path: "/web/api/" })).toBe(false);
    expect(matches('count(x{host=~"web-?"}) > 0', "x", { host: "web-1" })).toBe(true);
    expect(matches('count(x{host=~"web-?"}) > 0', "x", { host: "web-12" })).toBe(false);
    expect(matches('count(x{host!~"web-*"}) > 0', "x", { host: "db-1" })).toBe(true);
    expect(matches('count(x{host!~"web-*"}) > 0', "x", { host: "web-1" })).toBe(false);
    expect(matches('count(x{host=~"a.c"}) > 0', "x", { host: "abc" })).toBe(false); // regex characters are literal
  });

  test("rules - every matcher must hold", () => {
    const e = 'count(x{a="1", b=~"2*", c!="3"}) > 0';
    expect(matches(e, "x", { a: "1", b: "22", c: "4" })).toBe(true);
    expect(matches(e, "x", { a: "1", b: "22", c: "3" })).toBe(false);
    expect(matches(e, "x", { a: "1", b: "32" })).toBe(false);
  });
});

describe("rules - which windows answer a rule", () => {
  const windows = { specs: parseWindowSpecs("10s,60s/10s"), rollups: [{ label: "1m", sizeMs: 60_000 }, { label: "1h", sizeMs: 3_600_000 }] };
  const plan = (e: string, w: RuleWindows = windows) => planRule(parseExpr(e), w);

  test("rules - no over reads the base window; a configured length is read directly, percentiles included", () => {
    expect(plan("p95(x) > 1")).toEqual({ kind: "direct", source: "10s" });
    expect(plan("p95(x) over 60s > 1")).toEqual({ kind: "direct", source: "60s/10s" });
    expect(plan("sum(x) over 1m > 1")).toEqual({ kind: "direct", source: "60s/10s" });
    expect(plan("p99(x) over 1h > 1")).toEqual({ kind: "direct", source: "1h" });
    expect(plan("anomaly(x) >= warning")).toEqual({ kind: "signal" });
  });

  test("rules - any other length folds the finest tumbling window that divides it into at most 2048", () => {
    expect(plan("avg(x) over 30m > 1")).toEqual({ kind: "rolling", source: "10s", sourceMs: 10_000, overMs: 1_800_000 });
    expect(plan("rate(x) over 30s > 1")).toEqual({ kind: "rolling", source: "10s", sourceMs: 10_000, overMs: 30_000 });
    expect(plan("max(x) over 2d > 1")).toEqual({ kind: "rolling", source: "1h", sourceMs: 3_600_000, overMs: 172_800_000 });
    expect(plan("count(x) over 6h > 1")).toEqual({ kind: "rolling", source: "1m", sourceMs: 60_000, overMs: 21_600_000 });
  });

  test("rules - refused lengths name the window and why", () => {
    expect(ruleErrorOf(() => plan("p95(x) over 30m > 1"))).toBe(
      'expr: "over 30m": p95 needs a configured window of that length (10s, 60s/10s, 1m, 1h); count, sum, min, max, avg and rate take any multiple of a tumbling window',
    );
    expect(ruleErrorOf(() => plan("avg(x) over 15s > 1"))).toBe('expr: "over 15s": must be a multiple of a tumbling window (10s, 1m, 1h)');
    expect(ruleErrorOf(() => plan("avg(x) over 6h > 1", { specs: parseWindowSpecs("10s") }))).toBe(
      'expr: "over 6h": spans 2160 windows of 10s (the longest tumbling window that divides it), at most 2048',
    );
    expect(ruleErrorOf(() => plan("avg(x) > 1", { specs: parseWindowSpecs("60s/10s") }))).toBe(
      'expr: without "over" a rule reads the tumbling window of 10s, and the windows (60s/10s) have none: add "over" and a length',
    );
  });
});

describe("rules - rule definitions", () => {
  const windows = { specs: parseWindowSpecs("10s,60s/10s") };
  const good = { name: "complaint-sla", expr: 'avg(complaint.response_time{team="support"}) over 30m > 172800' };

  test("rules - a full rule compiles: durations in ms, defaults filled", () => {
    const r = parseRule({
      ...good, for: "30m", keep_firing_for: "5m", severity: "critical", labels: { owner: "ops" },
      advice: "Mean response {{value}} s is over {{threshold}} s: open the escalation pipeline", actions: ["escalate", "log"],
    }, { windows, actions: ["escalate", "log"] });
    expect(r).toMatchObject({
      name: "complaint-sla", exprText: good.expr, forMs: 1_800_000, keepFiringForMs: 300_000, severity: "critical",
      labels: { owner: "ops" }, actions: ["escalate", "log"],
    });
    expect(r.expr.kind).toBe("aggregate");
    const d = parseRule(good);
    expect(d).toMatchObject({ forMs: 0, keepFiringForMs: 0, severity: "warning", labels: {}, advice: null, actions: [] });
    expect(parseRule({ ...good, for: 0, keep_firing_for: "0" })).toMatchObject({ forMs: 0, keepFiringForMs: 0 });
  });

  const bad: Array<[unknown, string]> = [
    [5, "rules[2]: must be an object"],
    [{}, "rules[2].name: required"],
    [{ name: "r" }, "rules[2].expr: required"],
    [{ ...good, expr: 5 }, "rules[2].expr: must be a string"],
    [{ ...good, name: "a/b" }, "rules[2].name: must be a name of letters, digits, _ . : or -, starting with a letter or _"],
    [{ ...good, name: "x".repeat(65) }, "rules[2].name: at most 64 characters"],
    [{ ...good, for: "30" }, "rules[2].for: must be a duration like 30s or 5m"],
    [{ ...good, for: 30 }, "rules[2].for: must be a duration like 30s or 5m"],
    [{ ...good, keep_firing_for: "-1s" }, "rules[2].keep_firing_for: must be a duration like 30s or 5m"],
    [{ ...good, for: "8d" }, "rules[2].for: must be at most 7d"],
    [{ ...good, severity: "high" }, "rules[2].severity: must be one of info, warning, critical"],
    [{ ...good, labels: { "1a": "x" } }, "rules[2].labels.1a: a label key must be letters, digits or _, starting with a letter or _"],
    [{ ...good, labels: { a: 1 } }, "rules[2].labels.a: must be a string"],
    [{ ...good, labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, "rules[2].labels: at most 16 labels"],
    [{ ...good, advice: "{{value}} {{valu}} {{labels}} {{ threshold }}" }, "rules[2].advice: unknown placeholders {{valu}}, {{labels}} (use {{value}}, {{threshold}}, {{series}}, {{rule}} or {{labels.<key>}})"],
    [{ ...good, advice: "x {{value" }, 'rules[2].advice: "{{" at character 3 is not closed by "}}"'],
    [{ ...good, actions: "log" }, "rules[2].actions: must be an array"],
    [{ ...good, actions: ["log", "b c"] }, "rules[2].actions[1]: must be an action name of letters, digits, _ . : or -, starting with a letter or _"],
    [{ ...good, actions: ["escalate", "lgo"] }, 'rules[2].actions[1]: unknown action "lgo" (escalate, log)'],
    [{ ...good, extra: 1 }, "rules[2].extra: unknown field"],
    [{ ...good, expr: "median(x) > 1" }, 'rules[2].expr: at column 1: unknown aggregate "median" (one of count, sum, min, max, avg, p50, p95, p99, rate, anomaly, trend)'],
    [{ ...good, expr: "avg(x) over 15s > 1" }, 'rules[2].expr: "over 15s": must be a multiple of a tumbling window (10s)'],
  ];
  for (const [input, message] of bad) {
    test(`rules - rejects ${message.slice(0, 60)}`, () => {
      expect(ruleErrorOf(() => parseRule(input, { path: "rules[2]", windows, actions: ["escalate", "log"] }))).toBe(message);
    });
  }

  test("rules - without a path the field alone is named (the admin API's body)", () => {
    expect(ruleErrorOf(() => parseRule({ ...good, for: "soon" }))).toBe("for: must be a duration like 30s or 5m");
    expect(ruleErrorOf(() => parseRule({ ...good, expr: "avg(x) >" }))).toBe('expr: at column 9: expected a number after ">"');
    expect(ruleErrorOf(() => parseRule(null))).toBe("rule: must be an object");
  });
});

describe("rules - advice", () => {
  const values = { value: 172900.123456, threshold: 172800, series: 'complaint.response_time{team="support"}', rule: "sla", labels: { team: "support", owner: "ops" } };

  test("rules - placeholders are filled; numbers keep 6 significant digits", () => {
    expect(renderAdvice("Mean response {{value}} s is over {{threshold}} s on {{series}} ({{rule}}): page {{labels.owner}} of {{ labels.team }}", values)).toBe(
      'Mean response 172900 s is over 172800 s on complaint.response_time{team="support"} (sla): page ops of support',
    );
    expect(renderAdvice("{{value}}", { ...values, value: 0.000123456789 })).toBe("0.000123457");
    expect(renderAdvice("{{value}}/{{threshold}}", { ...values, value: "critical", threshold: "warning" })).toBe("critical/warning");
  });

  test("rules - no data and a missing label render as words and nothing", () => {
    expect(renderAdvice("[{{value}}] [{{labels.page}}]", { ...values, value: null })).toBe("[no data] []");
  });

  test("rules - text without placeholders, and braces that are not placeholders, stay as written", () => {
    expect(renderAdvice("scale the UI tier", values)).toBe("scale the UI tier");
    expect(renderAdvice("{ok} {value}", values)).toBe("{ok} {value}");
    expect(compileAdvice("a {{rule}} b").parts).toEqual(["a ", { field: "rule" }, " b"]);
  });

  test("rules - an unknown placeholder is named", () => {
    expect(ruleErrorOf(() => renderAdvice("{{vlaue}} and {{labels.}}", values))).toBe(
      "advice: unknown placeholders {{vlaue}}, {{labels.}} (use {{value}}, {{threshold}}, {{series}}, {{rule}} or {{labels.<key>}})",
    );
  });
});
