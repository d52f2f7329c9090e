/**
 * Reference tables' pure logic (src/actors/views/table.ts): CSV as RFC 4180
 * reads it (and what spreadsheets add: a byte-order mark, empty lines),
 * JSON and NDJSON, every rejection with its exact message, the bounds,
 * replace and upsert, and the lookup a view's join makes.
 */
import { describe, expect, test } from "bun:test";
import {
  formatOfContentType, formatOfPath, lookup, parseTable, replaceTable, TableError, type TableFormat, tableLookup, upsertTable,
} from "../src/actors/views/table.ts";
import { limits } from "../src/runtime/limits.ts";

const rowsOf = (text: string, format: TableFormat = "csv", key = "id") => [...parseTable(text, format, key, "body").rows.values()].map((r) => ({ ...r }));

/** The TableError a body raises: its code and message. */
function failure(text: string, format: TableFormat = "csv", key = "id"): [string, string] {
  try {
    parseTable(text, format, key, "body");
  } catch (e) {
    if (e instanceof TableError) return [e.code, e.message];
    throw e;
  }
  throw new Error("parsed, but should not have");
}

describe("views table - CSV", () => {
  test("views table - CSV: a header names the columns; quoted commas, doubled quotes, line breaks in quotes, CRLF", () => {
    const text = 'id,name,note\r\nu1,"Smith, Ann","said ""hi"""\r\nu2,Bo,"two\r\nlines"\r\nu3,,plain\r\n';
    expect(rowsOf(text)).toEqual([
      { id: "u1", name: "Smith, Ann", note: 'said "hi"' },
      { id: "u2", name: "Bo", note: "two\r\nlines" },
      { id: "u3", name: "", note: "plain" },
    ]);
    const t = parseTable(text, "csv", "id", "body");
    expect([t.key, t.columns, t.rows.size]).toEqual(["id", ["id", "name", "note"], 3]);
  });

  test("views table - CSV: a byte-order mark, empty lines, LF or a lone CR, no final line break, an empty last field", () => {
    expect(rowsOf("\uFEFFid,seg\n\nu1,gold\n\n\nu2,silver")).toEqual([{ id: "u1", seg: "gold" }, { id: "u2", seg: "silver" }]);
    expect(rowsOf("id,seg\ru1,gold\r")).toEqual([{ id: "u1", seg: "gold" }]);
    expect(rowsOf("id,a,b\nu1,x,\n")).toEqual([{ id: "u1", a: "x", b: "" }]);
    expect(rowsOf('id,a\n"u1",""\n')).toEqual([{ id: "u1", a: "" }]);
  });

  test("views table - CSV: fields are kept as written (no trimming); the key may be any column; a header alone is an empty table", () => {
    expect(rowsOf("seg,id\ngold , u1\n", "csv", "id")).toEqual([{ seg: "gold ", id: " u1" }]);
    const t = parseTable("id,seg\r\n", "csv", "id", "body");
    expect([t.columns, t.rows.size, t.chars]).toEqual([["id", "seg"], 0, 0]);
  });

  test("views table - CSV rejected, naming the line and column (a line counted after a quoted line break)", () => {
    const cases: Array<[string, string]> = [
      ["", "body: empty: the first line names the columns"],
      ["\n\n", "body: empty: the first line names the columns"],
      ["id,first name\n", 'body line 1, column 2: "first name" is not a column name (letters, digits and _, not starting with a digit, at most 64 characters)'],
      ["id,2x\n", 'body line 1, column 2: "2x" is not a column name (letters, digits and _, not starting with a digit, at most 64 characters)'],
      ["id,a,a\n", 'body line 1: column "a" twice'],
      ["user,seg\nu1,gold\n", 'body: the key column "id" is not among the columns (user, seg)'],
      ["id,seg\nu1,gold\nu2\n", "body line 3: 1 fields where the header has 2"],
      ["id,seg\nu1,\"multi\nline\"\nu2,a,b\n", "body line 4: 3 fields where the header has 2"],
      ['id,seg\nu1,"gold\n', "body line 2: a quoted field is not closed"],
      ['id,seg\nu1,go"ld\n', 'body line 2: a quote inside unquoted field 2 (quote the whole field and double its quotes: "a ""b"" c")'],
      ['id,seg\nu1,"gold"x\n', "body line 2: text after the closing quote of field 2"],
      ["id,seg\n,gold\n", "body line 2, column id: the key is empty"],
      ["id,seg\nu1,gold\nu2,silver\nu1,bronze\n", 'body line 4, column id: key "u1" again (first at line 2)'],
      [`id,seg\nu1,${"x".repeat(257)}\n`, "body line 2, column seg: 257 characters, at most 256 (tagValueCharsMax)"],
      [`id,seg\n${"u".repeat(257)},gold\n`, "body line 2, column id: 257 characters, at most 256 (tagValueCharsMax)"],
    ];
    for (const [text, message] of cases) expect([text, ...failure(text)]).toEqual([text, "bad_table", message]);
  });
});

describe("views table - JSON and NDJSON", () => {
  test("views table - JSON: an array of objects; numbers and booleans become text, null leaves the column out of the row", () => {
    const t = parseTable('[{"id": "u1", "age": 31, "vip": true, "seg": null}, {"id": 7, "seg": "gold"}]', "json", "id", "body");
    expect([...t.rows.values()].map((r) => ({ ...r }))).toEqual([{ id: "u1", age: "31", vip: "true" }, { id: "7", seg: "gold" }]);
    expect(t.columns).toEqual(["id", "age", "vip", "seg"]);
    expect(lookup(replaceTable("users", t, 1), "u1", "seg")).toBe("unknown");
    const empty = parseTable("[]", "json", "id", "body");
    expect([empty.columns, empty.rows.size]).toEqual([["id"], 0]);
  });

  test("views table - NDJSON: one object a line, blank lines skipped, CRLF", () => {
    expect(rowsOf('{"id": "u1", "seg": "gold"}\r\n\r\n{"id": "u2", "seg": 2}\n', "ndjson")).toEqual([{ id: "u1", seg: "gold" }, { id: "u2", seg: "2" }]);
  });

  test("views table - JSON and NDJSON rejected, naming the row (rows[i] or the line) and column", () => {
    const json: Array<[string, string]> = [
      ['{"id": "u1"}', "body: must be a JSON array of rows, each an object of column: value"],
      ['[{"id": "u1"}, "u2"]', "body rows[1]: must be an object of column: value"],
      ['[{"id": "u1"}, {"seg": "gold"}]', "body rows[1].id: required (the table's key)"],
      ['[{"id": ""}]', "body rows[0].id: the key is empty"],
      ['[{"id": "u1", "tags": ["a"]}]', "body rows[0].tags: must be a string, number, boolean or null"],
      ['[{"id": "u1", "first name": "Ann"}]', 'body rows[0]: "first name" is not a column name (letters, digits and _, not starting with a digit, at most 64 characters)'],
      ['[{"id": "u1"}, {"id": "u2"}, {"id": "u1"}]', 'body rows[2].id: key "u1" again (first at rows[0])'],
      ['[{"id": 1}, {"id": "1"}]', 'body rows[1].id: key "1" again (first at rows[0])'],
    ];
    for (const [text, message] of json) expect([text, ...failure(text, "json")]).toEqual([text, "bad_table", message]);
    expect(failure("[{nope", "json")[1]).toStartWith("body: not JSON: ");
    const nd: Array<[string, string]> = [
      ['{"id": "u1"}\n\n[1]\n', "body line 3: must be an object of column: value"],
      ['{"id": "u1"}\n{"id": "u1"}\n', 'body line 2, column id: key "u1" again (first at line 1)'],
    ];
    for (const [text, message] of nd) expect([text, ...failure(text, "ndjson")]).toEqual([text, "bad_table", message]);
    expect(failure('{"id": "u1"}\n{nope\n', "ndjson")[1]).toStartWith("body line 2: not JSON: ");
  });
});

describe("views table - bounds (limits.ts), each a too_large naming its bound", () => {
  test("views table - rows: tableRowsMax taken, one more refused naming the line", () => {
    const lines = (n: number) => "id\n" + Array.from({ length: n }, (_, i) => `u${i}`).join("\n") + "\n";
    expect(parseTable(lines(limits.tableRowsMax), "csv", "id", "body").rows.size).toBe(limits.tableRowsMax);
    expect(failure(lines(limits.tableRowsMax + 1))).toEqual(["too_large", `body line ${limits.tableRowsMax + 2}: more than ${limits.tableRowsMax} rows (tableRowsMax)`]);
  });

  test("views table - columns: tableColumnsMax taken, one more refused naming the column", () => {
    const header = (n: number) => ["id", ...Array.from({ length: n - 1 }, (_, i) => `c${i}`)].join(",") + "\n";
    expect(parseTable(header(limits.tableColumnsMax), "csv", "id", "body").columns.length).toBe(limits.tableColumnsMax);
    expect(failure(header(limits.tableColumnsMax + 1))).toEqual(["too_large", `body line 1, column ${limits.tableColumnsMax + 1}: more than ${limits.tableColumnsMax} columns (tableColumnsMax)`]);
    const wide = JSON.stringify([Object.fromEntries(Array.from({ length: limits.tableColumnsMax + 1 }, (_, i) => [i === 0 ? "id" : `c${i}`, "v"]))]);
    expect(failure(wide, "json")).toEqual(["too_large", `body rows[0]: more than ${limits.tableColumnsMax} columns (tableColumnsMax)`]);
  });

  test("views table - characters: tableCharsMax of values in one table, then refused naming the line", () => {
    const value = "v".repeat(limits.tagValueCharsMax - 8);
    const rowsFit = Math.floor(limits.tableCharsMax / limits.tagValueCharsMax); // each row: an 8-char key and its value
    const text = (n: number) => "id,v\n" + Array.from({ length: n }, (_, i) => `${String(i).padStart(8, "0")},${value}`).join("\n") + "\n";
    expect(parseTable(text(rowsFit), "csv", "id", "body").chars).toBe(rowsFit * limits.tagValueCharsMax);
    expect(failure(text(rowsFit + 1))).toEqual(["too_large", `body line ${rowsFit + 2}: more than ${limits.tableCharsMax} characters of values (tableCharsMax)`]);
  });
});

describe("views table - replace, upsert, lookup", () => {
  const users = replaceTable("users", parseTable("user_id,segment\nu1,gold\nu2,silver\n", "csv", "user_id", "users.csv"), 3);

  test("views table - lookup: the value, or unknown for a missing key or column; the views' lookup carries the version", () => {
    expect([lookup(users, "u1", "segment"), lookup(users, "u9", "segment"), lookup(users, "u1", "age"), lookup(undefined, "u1", "segment")])
      .toEqual(["gold", "unknown", "unknown", "unknown"]);
    const l = tableLookup(users);
    expect([l.version, l.get("u2")?.segment, l.get("u9")]).toEqual([3, "silver", undefined]);
  });

  test("views table - upsert: a key it has gets the new row whole, a new key is added, new columns join; the old table is left as it was", () => {
    const patch = parseTable('[{"user_id": "u2", "tier": "b"}, {"user_id": "u3", "segment": "gold"}]', "json", "user_id", "body");
    const { table, inserted, updated } = upsertTable(users, patch, 4);
    expect([inserted, updated, table.version, table.columns]).toEqual([1, 1, 4, ["user_id", "segment", "tier"]]);
    expect([...table.rows.values()].map((r) => ({ ...r }))).toEqual([
      { user_id: "u1", segment: "gold" }, { user_id: "u2", tier: "b" }, { user_id: "u3", segment: "gold" },
    ]);
    expect([lookup(table, "u2", "segment"), table.chars]).toEqual(["unknown", "u1gold".length + "u2b".length + "u3gold".length]);
    expect([users.version, users.rows.size, lookup(users, "u2", "segment")]).toEqual([3, 2, "silver"]);
  });

  test("views table - upsert past a bound is refused naming it, the table unchanged", () => {
    const full = replaceTable("big", parseTable("id\n" + Array.from({ length: limits.tableRowsMax }, (_, i) => `k${i}`).join("\n"), "csv", "id", "body"), 1);
    const again = parseTable("id\nk0\n", "csv", "id", "body");
    expect(upsertTable(full, again, 2).table.rows.size).toBe(limits.tableRowsMax); // an update adds no row
    const more = parseTable("id\nnew\n", "csv", "id", "body");
    expect(() => upsertTable(full, more, 2)).toThrow(`table big: ${limits.tableRowsMax + 1} rows after the upsert, at most ${limits.tableRowsMax} (tableRowsMax)`);
    expect(full.rows.size).toBe(limits.tableRowsMax);
  });

  test("views table - formats by file name and content type", () => {
    expect(["a.csv", "b.JSON", "c.ndjson", "d.jsonl", "e.txt"].map(formatOfPath)).toEqual(["csv", "json", "ndjson", "ndjson", null]);
    expect(["text/csv; charset=utf-8", "application/json", "application/x-ndjson", "text/plain", undefined].map(formatOfContentType))
      .toEqual(["csv", "json", "ndjson", null, null]);
  });
});
