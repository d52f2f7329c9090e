/**
 * The byte scan of the pii tests: every file under a directory, and every
 * row of every Parquet file among them read back as text (pages may be
 * compressed), searched for raw sensitive strings. A hit names where.
 *
 * @example
 *   const hits = await scanForRaw({ data: dataDir, log: Buffer.from(lines.join("\n")) }, ["alice@example.com"]);
 *   expect(hits).toEqual([]);
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { createHmac } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every file under `d` (none when it does not exist). */
export function walk(d: string): string[] {
  let names: string[];
  try {
    names = readdirSync(d);
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** The token weir writes for `value` under `key` (src/actors/pii.ts: HMAC-SHA256, 16 hex). */
export function piiToken(key: string, value: string): string {
  return "pii:" + createHmac("sha256", key).update(value).digest("hex").slice(0, 16);
}

/**
 * Where any of `raw` occurs: in the files under each directory of `dirs`
 * (and the rows of their Parquet files), and in each buffer of `bytes`.
 */
export async function scanForRaw(dirs: Record<string, string>, bytes: Record<string, Buffer>, raw: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  const scan = (where: string, b: Buffer) => {
    for (const v of raw) if (b.includes(Buffer.from(v))) hits.push(`${where}: ${v}`);
  };
  for (const [where, b] of Object.entries(bytes)) scan(where, b);
  const instance = await DuckDBInstance.create(":memory:");
  const duck = await instance.connect();
  try {
    for (const [name, dir] of Object.entries(dirs)) {
      for (const f of walk(dir)) {
        scan(`${name} ${f}`, readFileSync(f));
        if (!f.endsWith(".parquet")) continue;
        const rows = (await duck.runAndReadAll(`SELECT * FROM read_parquet('${f}')`)).getRowsJS();
        scan(`${name} ${f} (rows)`, Buffer.from(JSON.stringify(rows, (_k, v) => typeof v === "bigint" ? Number(v) : v)));
      }
    }
  } finally {
    duck.closeSync();
    instance.closeSync();
  }
  return hits;
}
