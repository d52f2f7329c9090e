/**
 * InfluxDB 1.x line protocol (what Telegraf sends to POST /write) → weir
 * events, by hand: one pass over the text's char codes, no regular
 * expression or split per line. API.md "Ingest":
 *
 *   measurement[,tag=value…] field=value[,field=value…] [timestamp]
 *
 * - Each numeric field is one event named `measurement.field` (just
 *   `measurement` for a field called `value`), with the line's tags and
 *   time. Floats (`1`, `-1.5`, `2e3`), integers (`3i`), unsigned (`3u`),
 *   booleans (`t`/`true`/`True`/`TRUE` → 1, `f`/`false`/… → 0). Strings
 *   (`"…"`) are skipped, not an error.
 * - Escapes as InfluxDB reads them: `\,` and `\ ` in the measurement; `\,`
 *   `\=` `\ ` in tag keys, tag values and field keys; `\"` and `\\` in
 *   strings. Any other backslash is itself.
 * - The timestamp is an integer in the request's precision (ns, us, ms, s),
 *   turned into whole milliseconds by dropping digits (exact: nanoseconds
 *   exceed 2^53, so they are never read as one number). Without it, the
 *   receive time.
 * - Blank lines and `#` comments are skipped. A line that does not parse is
 *   named in `errors` (line number from 1, and what is wrong); the others
 *   still give their events (InfluxDB's partial write).
 * The events are then validated like any other (names, tags, time bounds).
 *
 * @example
 *   parseLines("cpu,host=a usage_idle=97.5,cores=4i 1700000000000000000", "ns")
 *   // { events: [{ name: "cpu.usage_idle", value: 97.5, ts: 1700000000000, tags: { host: "a" } }, { name: "cpu.cores", value: 4, … }],
 *   //   lines: [0, 0], errors: [] }
 */

export type Precision = "ns" | "us" | "ms" | "s";

export interface LineEvent { name: string; value: number; ts?: number; tags?: Record<string, string> }

export interface ParsedLines {
  events: LineEvent[];
  /** The line (from 0) each event came from. */
  lines: number[];
  errors: Array<{ line: number; error: string; text: string }>;
}

/** Digits dropped to get milliseconds, or (negative) zeros appended. */
const msShift: Record<Precision, number> = { ns: 6, us: 3, ms: 0, s: -3 };

const SPACE = 32, COMMA = 44, EQ = 61, BSL = 92, QUOTE = 34, HASH = 35, TAB = 9, CR = 13, LF = 10;

class LineError extends Error {}

/** Parses a body of lines; never throws for a bad line (see `errors`). */
export function parseLines(text: string, precision: Precision): ParsedLines {
  const out: ParsedLines = { events: [], lines: [], errors: [] };
  let line = 0;
  for (let start = 0; start <= text.length; line++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    let e = end;
    while (e > start && (text.charCodeAt(e - 1) === CR || text.charCodeAt(e - 1) === SPACE || text.charCodeAt(e - 1) === TAB)) e--;
    let s = start;
    while (s < e && (text.charCodeAt(s) === SPACE || text.charCodeAt(s) === TAB)) s++;
    if (s < e && text.charCodeAt(s) !== HASH) {
      try {
        parseLine(text, s, e, precision, line, out);
      } catch (err) {
        if (!(err instanceof LineError)) throw err;
        out.errors.push({ line, error: `line ${line + 1}: ${err.message}`, text: text.slice(s, Math.min(e, s + 256)) });
      }
    }
    start = end + 1;
  }
  return out;
}

/** One line [s, e) into `out` (all its events, or none: on a LineError its events are taken back out). */
function parseLine(text: string, s: number, e: number, precision: Precision, line: number, out: ParsedLines): void {
  const first = out.events.length;
  try {
    parseFields(text, s, e, precision, line, out, first);
  } catch (err) {
    out.events.length = first;
    out.lines.length = first;
    throw err;
  }
}

function parseFields(text: string, s: number, e: number, precision: Precision, line: number, out: ParsedLines, first: number): void {
  // The measurement and tags: up to the first unescaped space, the same text line after line for one series.
  let i = s;
  while (i < e && text.charCodeAt(i) !== SPACE) i += text.charCodeAt(i) === BSL && text.charCodeAt(i + 1) === SPACE ? 2 : 1; // as readToken reads `\ `
  if (i >= e) throw new LineError(s === i ? "missing measurement" : "missing fields");
  const key = text.slice(s, i);
  const series = seriesCache.get(key) ?? seriesOf(key);
  const { measurement, tags, names } = series;
  let seen = 0;
  do {
    i++;
    const k = readToken(text, i, e, true);
    if (k.value === "" || k.end >= e || text.charCodeAt(k.end) !== EQ) throw new LineError(`field "${k.value}": missing value`);
    i = k.end + 1;
    seen++;
    if (text.charCodeAt(i) === QUOTE) {
      i = skipString(text, i + 1, e, k.value); // a string field: skipped
    } else {
      let j = i;
      while (j < e && text.charCodeAt(j) !== COMMA && text.charCodeAt(j) !== SPACE) j++;
      // One shape for every event (ts and tags set or undefined): the validator's property reads stay monomorphic.
      const ev: LineEvent = { name: names.get(k.value) ?? nameOf(names, measurement, k.value), value: fieldNumber(text.slice(i, j), k.value), ts: undefined, tags };
      out.events.push(ev);
      out.lines.push(line);
      i = j;
    }
  } while (i < e && text.charCodeAt(i) === COMMA);
  if (seen === 0) throw new LineError("missing fields");
  if (i < e) {
    while (i < e && text.charCodeAt(i) === SPACE) i++;
    const ts = timestampMs(text, i, e, precision);
    for (let k = first; k < out.events.length; k++) out.events[k].ts = ts;
  }
}

/**
 * A line's series part (`measurement,tag=value…`) parsed, with its events'
 * names by field. A body repeats a few series many times (Telegraf sends
 * every host's same measurements each interval), so the part is parsed
 * once per text and its tags object shared by its events (nothing changes
 * them). Bounded: past seriesCacheMax parts the cache starts again.
 */
interface SeriesPart { measurement: string; tags: Record<string, string> | undefined; names: Map<string, string> }

const seriesCache = new Map<string, SeriesPart>();
const seriesCacheMax = 10_000;
const namesPerSeriesMax = 256;

function seriesOf(key: string): SeriesPart {
  const e = key.length;
  const m = readToken(key, 0, e, false);
  if (m.value === "") throw new LineError("missing measurement");
  let i = m.end;
  let tags: Record<string, string> | undefined;
  while (i < e && key.charCodeAt(i) === COMMA) {
    const k = readToken(key, i + 1, e, true);
    if (k.end >= e || key.charCodeAt(k.end) !== EQ) throw new LineError(`tag "${k.value}": missing value`);
    const v = readToken(key, k.end + 1, e, true);
    if (k.value === "" || v.value === "") throw new LineError(`tag "${k.value}": empty key or value`);
    tags ??= {};
    tags[k.value] = v.value;
    i = v.end;
  }
  if (i < e) throw new LineError(`tag "${key.slice(i, i + 64)}": unexpected`); // a comma or = where none can be
  const part = { measurement: m.value, tags, names: new Map<string, string>() };
  if (seriesCache.size >= seriesCacheMax) seriesCache.clear();
  seriesCache.set(key, part);
  return part;
}

function nameOf(names: Map<string, string>, measurement: string, field: string): string {
  const name = field === "value" ? measurement : `${measurement}.${field}`;
  if (names.size < namesPerSeriesMax) names.set(field, name);
  return name;
}

/** A measurement (`eqEnds` false) or key/value: up to an unescaped comma or space (or `=` when `eqEnds`), escapes removed. */
function readToken(text: string, i: number, e: number, eqEnds: boolean): { value: string; end: number } {
  let value = "";
  let from = i;
  for (; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c === BSL && i + 1 < e) {
      const n = text.charCodeAt(i + 1);
      if (n === COMMA || n === SPACE || (eqEnds && n === EQ)) {
        value += text.slice(from, i);
        from = i + 1;
        i++;
      }
      continue;
    }
    if (c === COMMA || c === SPACE || (eqEnds && c === EQ)) break;
  }
  return { value: value + text.slice(from, i), end: i };
}

/** Past a string field's closing quote (from just after its opening one). */
function skipString(text: string, i: number, e: number, field: string): number {
  for (; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c === BSL) i++;
    else if (c === QUOTE) return i + 1;
  }
  throw new LineError(`field "${field}": unterminated string`);
}

const floatSyntax = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const intSyntax = /^[+-]?\d+$/;

function fieldNumber(token: string, field: string): number {
  const last = token.charCodeAt(token.length - 1);
  if (last === 105 /* i */ || last === 117 /* u */) {
    const digits = token.slice(0, -1);
    if (intSyntax.test(digits) && !(last === 117 && digits.startsWith("-"))) return Number(digits);
  } else if (floatSyntax.test(token)) {
    const v = Number(token);
    if (Number.isFinite(v)) return v;
  } else {
    switch (token) {
      case "t": case "T": case "true": case "True": case "TRUE": return 1;
      case "f": case "F": case "false": case "False": case "FALSE": return 0;
    }
  }
  throw new LineError(`field "${field}": not a number, boolean or string: ${JSON.stringify(token.slice(0, 64))}`);
}

/** The integer timestamp at [i, e) in `precision`, to whole milliseconds by its digits. */
function timestampMs(text: string, i: number, e: number, precision: Precision): number {
  const neg = text.charCodeAt(i) === 45; // -
  const from = neg || text.charCodeAt(i) === 43 ? i + 1 : i;
  for (let k = from; k < e; k++) {
    const c = text.charCodeAt(k);
    if (c < 48 || c > 57) throw new LineError(`timestamp: not an integer: ${JSON.stringify(text.slice(i, Math.min(e, i + 64)))}`);
  }
  if (from === e) throw new LineError(`timestamp: not an integer: ${JSON.stringify(text.slice(i, e))}`);
  const shift = msShift[precision];
  const ms = shift >= 0 ? (e - from > shift ? Number(text.slice(from, e - shift)) : 0) : Number(text.slice(from, e)) * 10 ** -shift;
  return neg ? -ms : ms;
}
