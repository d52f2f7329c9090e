/**
 * A reference table (API.md "Views and reference tables"): rows by key, read
 * from CSV or JSON, that the views join events with. The partition workers
 * hold it whole and look a key up per series (a Map from the key to the row);
 * `version` changes with every change, so a worker knows when to bind its
 * series again.
 *
 * Join semantics, ksqlDB's stream–table join: an event is joined with the
 * table as it stands when the event is processed, not as it stood at the
 * event's time; a change applies to the events processed after it, and
 * results already emitted are not recomputed. A key with no row, and a row
 * without the column (a JSON null), read as "unknown" (lookup()).
 *
 * Reading, in weir's words, each error naming where it is ("body line 4,
 * column segment: ...", "users.json rows[2].age: ..."):
 * - CSV as RFC 4180: a header row naming the columns, fields separated by
 *   commas, a field in double quotes may hold commas, line breaks and
 *   doubled quotes (""); records end in CRLF or LF. Also accepted: a UTF-8
 *   byte-order mark, and empty lines (skipped). Fields are kept as written
 *   (no trimming). Every record has as many fields as the header.
 * - JSON: an array of objects, or NDJSON (one object a line); numbers and
 *   booleans become their text, null leaves the column out of that row,
 *   anything else is an error.
 * - Column names are tag keys ([A-Za-z_][A-Za-z0-9_]*, at most
 *   limits.tagKeyCharsMax); values (keys included) at most
 *   limits.tagValueCharsMax characters, since a joined column becomes a
 *   group's tag; the key column is in every row and never empty.
 * - A key twice in one body is an error naming both places: two rows for
 *   one user is a mistake in the data, and last-wins would hide which row a
 *   view joins. (PATCH replaces the rows of keys the table has: that is the
 *   upsert, not a duplicate.)
 * - Bounds (limits.ts): tableRowsMax rows, tableColumnsMax columns,
 *   tableCharsMax characters of values; past one it is a TableError with
 *   code too_large (HTTP 413) naming the bound.
 *
 * @example
 *   const rows = parseTable("user_id,segment\r\nu1,gold\r\n", "csv", "user_id", "users.csv");
 *   const users = replaceTable("users", rows, 1);
 *   lookup(users, "u1", "segment"); // "gold"
 *   lookup(users, "u9", "segment"); // "unknown"
 */
import { strict as assert } from "node:assert";
import { WeirError } from "../../runtime/errors.ts";
import { limits } from "../../runtime/limits.ts";
import type { TableLookup } from "./view-set.ts";

/** Rows that cannot be taken as written (400), or past a bound (too_large: 413). */
export class TableError extends WeirError {
  override name = "TableError";
  constructor(message: string, code: "bad_table" | "too_large" = "bad_table") {
    super(code, message);
  }
}

export type TableFormat = "csv" | "json" | "ndjson";
export type Row = Readonly<Record<string, string>>;

/** Rows read and validated, not yet a table (no name, no version). */
export interface TableRows {
  key: string;
  /** In the order first seen: the CSV header's, or the JSON rows' keys. */
  columns: string[];
  rows: Map<string, Row>;
  /** Characters of every value, keys included (at most limits.tableCharsMax). */
  chars: number;
}

export interface RefTable {
  readonly name: string;
  readonly key: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyMap<string, Row>;
  /** Changes with every change of the table (the table book numbers them). */
  readonly version: number;
  readonly chars: number;
}

/** What a missing key or column reads as (API.md). */
export const unknownValue = "unknown";

const namePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
const columnRule = `letters, digits and _, not starting with a digit, at most ${limits.tagKeyCharsMax} characters`;

/** A table's name: as a view's `join: {table: ...}` names it. */
export function isTableName(s: string): boolean {
  return s.length <= limits.tableNameCharsMax && namePattern.test(s);
}

/** A column's name: a tag key. */
export function isColumnName(s: string): boolean {
  return s.length <= limits.tagKeyCharsMax && namePattern.test(s);
}

/**
 * The value of `column` in the row of `key`, or "unknown".
 * @example lookup(users, "u1", "segment") // "gold"
 */
export function lookup(table: RefTable | undefined, key: string, column: string): string {
  return table?.rows.get(key)?.[column] ?? unknownValue;
}

/** The table as a partition's views read it (view-set.ts). */
export function tableLookup(table: RefTable): TableLookup {
  return { version: table.version, get: (key) => table.rows.get(key) };
}

/** The format a file's name says (.csv, .json, .ndjson or .jsonl), or null. */
export function formatOfPath(path: string): TableFormat | null {
  const m = /\.(csv|json|ndjson|jsonl)$/i.exec(path);
  if (m === null) return null;
  const ext = m[1].toLowerCase();
  return ext === "jsonl" ? "ndjson" : (ext as TableFormat);
}

/** The format a Content-Type names (text/csv, application/json, application/x-ndjson), or null. */
export function formatOfContentType(contentType: string | undefined): TableFormat | null {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  return type === "text/csv" ? "csv" : type === "application/json" ? "json" : type === "application/x-ndjson" ? "ndjson" : null;
}

/**
 * Reads and validates rows keyed by the column `key`; `where` starts every
 * error ("body", "users.csv"). Throws a TableError.
 * @example parseTable('[{"user_id": "u1", "age": 31}]', "json", "user_id", "body").rows.get("u1") // { user_id: "u1", age: "31" }
 */
export function parseTable(text: string, format: TableFormat, key: string, where: string): TableRows {
  assert(isColumnName(key), "the key column's name is checked where it comes in");
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark, as spreadsheets write it
  if (format === "csv") return readCsv(text, key, where);
  return format === "json" ? readJson(text, key, where) : readNdjson(text, key, where);
}

/** A table of exactly these rows (PUT, a config file's table, a start from the store). */
export function replaceTable(name: string, rows: TableRows, version: number): RefTable {
  return { name, key: rows.key, columns: rows.columns, rows: rows.rows, version, chars: rows.chars };
}

/**
 * The table with `patch`'s rows put by key (PATCH): a key it has gets the
 * new row whole, a new key is added; columns new to it are added. A new
 * table: the old one is left as it is, for whoever still reads it.
 * Throws a too_large TableError when the result is past a bound.
 */
export function upsertTable(table: RefTable, patch: TableRows, version: number): { table: RefTable; inserted: number; updated: number } {
  assert(patch.key === table.key, "a patch is read with the table's key");
  const rows = new Map(table.rows);
  let chars = table.chars;
  let inserted = 0;
  for (const [k, row] of patch.rows) {
    const old = rows.get(k);
    if (old === undefined) inserted++;
    else chars -= charsOf(old);
    chars += charsOf(row);
    rows.set(k, row);
  }
  const columns = [...table.columns];
  for (const c of patch.columns) if (!columns.includes(c)) columns.push(c);
  const over = (what: string, n: number, max: number, bound: string) =>
    new TableError(`table ${table.name}: ${n} ${what} after the upsert, at most ${max} (${bound})`, "too_large");
  if (rows.size > limits.tableRowsMax) throw over("rows", rows.size, limits.tableRowsMax, "tableRowsMax");
  if (columns.length > limits.tableColumnsMax) throw over("columns", columns.length, limits.tableColumnsMax, "tableColumnsMax");
  if (chars > limits.tableCharsMax) throw over("characters of values", chars, limits.tableCharsMax, "tableCharsMax");
  return { table: { name: table.name, key: table.key, columns, rows, version, chars }, inserted, updated: patch.rows.size - inserted };
}

function charsOf(row: Row): number {
  let n = 0;
  for (const c in row) n += row[c].length;
  return n;
}

/** Gathers rows, each checked against the key, the bounds and the rows before it. */
class RowsBuilder {
  readonly rows = new Map<string, Row>();
  readonly columns: string[] = [];
  private readonly known = new Set<string>();
  /** Where each key was read: a key twice names both places. */
  private readonly firstAt = new Map<string, string>();
  private chars = 0;

  constructor(readonly where: string, readonly key: string) {}

  /** A column as it is first seen, at `at` ("line 1, column 3", "rows[2]"). */
  column(name: string, at: string): void {
    if (this.known.has(name)) return;
    if (!isColumnName(name)) throw new TableError(`${this.where} ${at}: ${JSON.stringify(name.slice(0, 80))} is not a column name (${columnRule})`);
    if (this.columns.length >= limits.tableColumnsMax) {
      throw new TableError(`${this.where} ${at}: more than ${limits.tableColumnsMax} columns (tableColumnsMax)`, "too_large");
    }
    this.known.add(name);
    this.columns.push(name);
  }

  /** A row read at `at`; colAt names one of its columns there. Its columns went through column() already. */
  add(row: Record<string, string>, at: string, colAt: (column: string) => string): void {
    const fail = (message: string, code?: "too_large") => new TableError(`${this.where} ${message}`, code);
    if (this.rows.size >= limits.tableRowsMax) throw fail(`${at}: more than ${limits.tableRowsMax} rows (tableRowsMax)`, "too_large");
    const k = row[this.key];
    if (k === undefined) throw fail(`${colAt(this.key)}: required (the table's key)`);
    if (k === "") throw fail(`${colAt(this.key)}: the key is empty`);
    const first = this.firstAt.get(k);
    if (first !== undefined) throw fail(`${colAt(this.key)}: key ${JSON.stringify(k)} again (first at ${first})`);
    for (const c in row) {
      const n = row[c].length;
      if (n > limits.tagValueCharsMax) throw fail(`${colAt(c)}: ${n} characters, at most ${limits.tagValueCharsMax} (tagValueCharsMax)`);
      this.chars += n;
    }
    if (this.chars > limits.tableCharsMax) throw fail(`${at}: more than ${limits.tableCharsMax} characters of values (tableCharsMax)`, "too_large");
    this.rows.set(k, row);
    this.firstAt.set(k, at);
  }

  done(): TableRows {
    if (!this.known.has(this.key)) this.columns.unshift(this.key); // an empty JSON list: the table has its key column still
    return { key: this.key, columns: this.columns, rows: this.rows, chars: this.chars };
  }
}

function readCsv(text: string, key: string, where: string): TableRows {
  const records = csvRecords(text, where);
  const head = records.next();
  if (head.done) throw new TableError(`${where}: empty: the first line names the columns`);
  const header = head.value.fields;
  const b = new RowsBuilder(where, key);
  const seen = new Set<string>();
  header.forEach((name, i) => {
    if (seen.has(name)) throw new TableError(`${where} line ${head.value.line}: column ${JSON.stringify(name)} twice`);
    seen.add(name);
    b.column(name, `line ${head.value.line}, column ${i + 1}`);
  });
  if (!header.includes(key)) throw new TableError(`${where}: the key column ${JSON.stringify(key)} is not among the columns (${header.join(", ")})`);
  for (const r of records) {
    const at = `line ${r.line}`;
    if (r.fields.length !== header.length) throw new TableError(`${where} ${at}: ${r.fields.length} fields where the header has ${header.length}`);
    const row: Record<string, string> = Object.create(null); // no prototype: a column may be named like one of Object's
    for (let i = 0; i < header.length; i++) row[header[i]] = r.fields[i];
    b.add(row, at, (c) => `${at}, column ${c}`);
  }
  return b.done();
}

const QUOTE = 34;
const COMMA = 44;
const CR = 13;
const LF = 10;

/**
 * The records of a CSV text with the line each starts on (1-based), as
 * RFC 4180 reads them; empty lines are skipped. Throws a TableError naming
 * the line of a quote out of place.
 */
function* csvRecords(text: string, where: string): Generator<{ line: number; fields: string[] }> {
  const n = text.length;
  let i = 0;
  let line = 1;
  const endOfLine = (at: number): number => (text.charCodeAt(at) === CR && text.charCodeAt(at + 1) === LF ? at + 2 : at + 1);
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === CR || c === LF) {
      i = endOfLine(i);
      line++;
      continue;
    }
    const start = line;
    const fields: string[] = [];
    for (;;) {
      let value: string;
      if (text.charCodeAt(i) === QUOTE) {
        [value, i, line] = quotedField(text, i, line, start, where);
        const d = text.charCodeAt(i);
        if (i < n && d !== COMMA && d !== CR && d !== LF) throw new TableError(`${where} line ${line}: text after the closing quote of field ${fields.length + 1}`);
      } else {
        const from = i;
        for (let d = text.charCodeAt(i); i < n && d !== COMMA && d !== CR && d !== LF; d = text.charCodeAt(++i)) {
          if (d === QUOTE) throw new TableError(`${where} line ${line}: a quote inside unquoted field ${fields.length + 1} (quote the whole field and double its quotes: "a ""b"" c")`);
        }
        value = text.slice(from, i);
      }
      fields.push(value);
      if (text.charCodeAt(i) !== COMMA) break;
      i++;
    }
    if (i < n) {
      i = endOfLine(i);
      line++;
    }
    yield { line: start, fields };
  }
}

/** The quoted field opening at `i`: its value, and where the text and the line count are after its closing quote. */
function quotedField(text: string, i: number, line: number, start: number, where: string): [string, number, number] {
  let value = "";
  i++;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) throw new TableError(`${where} line ${start}: a quoted field is not closed`);
    const part = text.slice(i, q);
    value += part;
    line += linesIn(part);
    if (text.charCodeAt(q + 1) !== QUOTE) return [value, q + 1, line];
    value += '"';
    i = q + 2;
  }
}

/** Line breaks (CRLF, LF or a lone CR) in a field's text. */
function linesIn(s: string): number {
  let k = 0;
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === LF || (c === CR && s.charCodeAt(j + 1) !== LF)) k++;
  }
  return k;
}

function readJson(text: string, key: string, where: string): TableRows {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new TableError(`${where}: not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(doc)) throw new TableError(`${where}: must be a JSON array of rows, each an object of column: value`);
  const b = new RowsBuilder(where, key);
  doc.forEach((item, i) => addJsonRow(b, item, `rows[${i}]`, (c) => `rows[${i}].${c}`));
  return b.done();
}

function readNdjson(text: string, key: string, where: string): TableRows {
  const b = new RowsBuilder(where, key);
  const lines = text.split("\n");
  for (let k = 0; k < lines.length; k++) {
    const s = lines[k].trim();
    if (s === "") continue;
    const at = `line ${k + 1}`;
    let item: unknown;
    try {
      item = JSON.parse(s);
    } catch (e) {
      throw new TableError(`${where} ${at}: not JSON: ${(e as Error).message}`);
    }
    addJsonRow(b, item, at, (c) => `${at}, column ${c}`);
  }
  return b.done();
}

function addJsonRow(b: RowsBuilder, item: unknown, at: string, colAt: (column: string) => string): void {
  if (typeof item !== "object" || item === null || Array.isArray(item)) throw new TableError(`${b.where} ${at}: must be an object of column: value`);
  const row: Record<string, string> = Object.create(null); // no prototype: a column may be named like one of Object's
  for (const [c, v] of Object.entries(item)) {
    b.column(c, at);
    if (v === null) continue; // no value: the column reads as "unknown" in this row
    if (typeof v === "string") row[c] = v;
    else if (typeof v === "number" || typeof v === "boolean") row[c] = String(v);
    else throw new TableError(`${b.where} ${colAt(c)}: must be a string, number, boolean or null`);
  }
  b.add(row, at, colAt);
}
