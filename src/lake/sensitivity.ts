/**
 * Which lake columns hold values that pass through the pii scrubber
 * (src/actors/pii.ts: tag and prop values, hence series keys), and the
 * second layer over them: a token without the `pii` grant reads the lake
 * through schema `masked`, where those columns have every pii token
 * (`pii:` + 16 hex) replaced by `***`. The first layer (ingest) keeps the
 * clear value out of everything weir writes; this one keeps the tokens,
 * which still link events of one person, from analysts not granted that.
 *
 * Schema `masked` holds a view of each lake table (and of each metric
 * view, bound there so it reads the masked tables). A masked query is
 * refused when it could reach around it: a table named with its schema
 * or catalog (`main.events`), a file (`'lake/raw/….parquet'`), or a table
 * function (read_parquet, query, …) other than a few that read no data.
 *
 * @example
 *   await conn.run(`CREATE VIEW masked.events AS ${maskedSelect("events", eventColumns)}`);
 *   await checkMaskedReach(conn, "SELECT * FROM main.events", names); // throws LakeQueryError
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { LakeQueryError } from "./errors.ts";
import { sqlIdent, sqlString } from "./tables.ts";

export const maskedSchema = "masked";
/** The in-memory database's catalog name in DuckDB. */
export const lakeCatalog = "memory";

/** Columns tagged `pii` when pii is configured, by table (the rollup views share `windows`' columns). */
const piiColumns: Record<string, readonly string[]> = {
  events: ["series", "tags", "props"],
  windows: ["series"], windows_1m: ["series"], windows_1h: ["series"],
  anomalies: ["series"], trends: ["series"], alerts: ["series", "labels", "advice"],
  deadletters: ["reason", "event"], series: ["key", "tags"],
};

/** The catalog's sensitivity tags of a column: ["pii"] for a column the scrubber writes into, when pii is configured. */
export function sensitivityOf(table: string, column: string, piiOn: boolean): string[] {
  return piiOn && (piiColumns[table]?.includes(column) ?? false) ? ["pii"] : [];
}

const tokenRe = sqlString("pii:[0-9a-f]{16}");
const masked = (expr: string) => `regexp_replace(${expr}, ${tokenRe}, '***', 'g')`;

/**
 * The SELECT of a table's masked view: its pii columns (by default those
 * tagged for the table) with every token replaced, the others as they are.
 */
export function maskedSelect(table: string, columns: ReadonlyArray<{ name: string; type: string }>, pii: readonly string[] = piiColumns[table] ?? []): string {
  const cols = columns.map((c) => {
    const id = sqlIdent(c.name);
    if (!pii.includes(c.name)) return id;
    if (c.type.startsWith("MAP")) return `map_from_entries(list_transform(map_entries(${id}), e -> {'key': e.key, 'value': ${masked("e.value")}})) AS ${id}`;
    if (c.type === "JSON") return `${masked(`${id}::VARCHAR`)}::JSON AS ${id}`;
    return `${masked(id)} AS ${id}`;
  });
  return `SELECT ${cols.join(", ")} FROM ${lakeCatalog}.main.${sqlIdent(table)}`;
}

/** The columns a derived table (a materialised metric view) may carry tokens in: its text, JSON and map(text) columns. */
export function textColumns(columns: ReadonlyArray<{ name: string; type: string }>): string[] {
  return columns.filter((c) => c.type === "VARCHAR" || c.type === "JSON" || c.type === "MAP(VARCHAR, VARCHAR)").map((c) => c.name);
}

/** Table functions a masked query may call: they make rows, they read none. */
const harmlessFunctions = new Set(["range", "generate_series", "unnest"]);

/**
 * Throws LakeQueryError unless every table `sql` reads is one of `names`
 * (the masked schema's) or a CTE of its own, unqualified, and it calls no
 * table function that reads data. Walks DuckDB's own parse tree.
 */
export async function checkMaskedReach(conn: DuckDBConnection, sql: string, names: ReadonlySet<string>): Promise<void> {
  const r = await conn.runAndReadAll(`SELECT json_serialize_sql(${sqlString(sql)})::VARCHAR`);
  const tree = JSON.parse(String(r.getRowsJS()[0]?.[0] ?? "{}")) as unknown;
  const ctes = new Set<string>();
  const tables: Array<{ schema: string; catalog: string; name: string }> = [];
  const functions: string[] = [];
  walk(tree, ctes, tables, functions);
  for (const f of functions) {
    if (!harmlessFunctions.has(f.toLowerCase())) throw new LakeQueryError(`sql: table function ${f}() needs the pii role (it can read around the masked columns)`);
  }
  for (const t of tables) {
    if (t.schema !== "" || t.catalog !== "") throw new LakeQueryError(`sql: "${[t.catalog, t.schema, t.name].filter(Boolean).join(".")}": name tables without a schema (the pii role reads others)`);
    if (!names.has(t.name) && !ctes.has(t.name)) throw new LakeQueryError(`sql: "${t.name}" is not a table of the catalog`);
  }
}

function walk(node: unknown, ctes: Set<string>, tables: Array<{ schema: string; catalog: string; name: string }>, functions: string[]): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, ctes, tables, functions);
    return;
  }
  if (typeof node !== "object" || node === null) return;
  const o = node as Record<string, unknown>;
  if (o.type === "BASE_TABLE") tables.push({ schema: String(o.schema_name ?? ""), catalog: String(o.catalog_name ?? ""), name: String(o.table_name ?? "") });
  if (o.type === "TABLE_FUNCTION") functions.push(String((o.function as Record<string, unknown> | undefined)?.function_name ?? "?"));
  const map = (o.cte_map as { map?: Array<{ key: string }> } | undefined)?.map;
  if (Array.isArray(map)) for (const e of map) ctes.add(e.key);
  for (const v of Object.values(o)) walk(v, ctes, tables, functions);
}
