import { DuckDBTypeId, type DuckDBType } from "@duckdb/node-api";

/**
 * DuckDB's JavaScript values as JSON: BIGINT as a number when it is a safe
 * integer (times are epoch ms numbers everywhere in weir), a string past
 * that; dates as ISO text; maps as objects; nested lists and structs alike.
 *
 * @example
 *   jsonValue(1763800000000n) // 1763800000000
 */
export function jsonValue(v: unknown): unknown {
  if (typeof v === "bigint") return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v === null || typeof v !== "object") return typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonValue(x)]));
  if (Array.isArray(v)) return v.map(jsonValue);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
}

/**
 * A row as JSON by its columns' types: a MAP (which DuckDB's JavaScript
 * values give as a list of {key, value}) as an object, a JSON column as
 * the value it holds, the rest by jsonValue.
 *
 * @example
 *   jsonRow([[{ key: "page", value: "home" }]], [mapType]) // [{ page: "home" }]
 */
export function jsonRow(row: unknown[], types: DuckDBType[]): unknown[] {
  return row.map((v, i) => {
    const t = types[i];
    if (v === null || v === undefined) return null;
    if (t?.typeId === DuckDBTypeId.MAP && Array.isArray(v)) {
      return Object.fromEntries((v as Array<{ key: unknown; value: unknown }>).map((e) => [String(e.key), jsonValue(e.value)]));
    }
    if (t?.alias === "JSON" && typeof v === "string") return JSON.parse(v) as unknown;
    return jsonValue(v);
  });
}
