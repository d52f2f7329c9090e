/**
 * Read-only by construction: a query runs only if DuckDB's own parser finds
 * exactly one statement in it, that statement serialises as a SELECT
 * (json_serialize_sql refuses every other kind: PRAGMA, ATTACH, COPY,
 * SET, INSTALL, LOAD, CREATE, INSERT…, before PRAGMA is rewritten into
 * a SELECT), and its prepared form is a SELECT. The instance is locked
 * too (sql-service.ts: no file access outside the lake, configuration
 * locked), so a check missed here still could not write or read around.
 *
 * @example
 *   const prepared = await prepareReadOnly(conn, "SELECT 1"); // or throws LakeQueryError naming why
 */
import { StatementType, type DuckDBConnection, type DuckDBPreparedStatement } from "@duckdb/node-api";
import { LakeQueryError } from "./errors.ts";
import { sqlString } from "./tables.ts";

/** The statement prepared, if it is one read-only SELECT; else a LakeQueryError saying why. */
export async function prepareReadOnly(conn: DuckDBConnection, sql: string): Promise<DuckDBPreparedStatement> {
  let count: number;
  const extracted = await conn.extractStatements(sql).catch((e: Error) => {
    throw new LakeQueryError(`sql: ${firstLine(e.message)}`);
  });
  count = extracted.count;
  if (count !== 1) throw new LakeQueryError(`sql: exactly one statement may run, found ${count}`);
  // A literal, not a parameter: json_serialize_sql takes a constant (its text doubles every quote, so it cannot end early).
  const serialised = await conn.runAndReadAll(`SELECT json_serialize_sql(${sqlString(sql)})::JSON->>'error_message'`);
  const refused = serialised.getRows()[0]?.[0];
  if (typeof refused === "string") throw new LakeQueryError(`sql: only a SELECT (or WITH … SELECT) may run, not ${leadingKeyword(sql)}`);
  const prepared = await extracted.prepare(0).catch((e: Error) => {
    throw new LakeQueryError(`sql: ${firstLine(e.message)}`);
  });
  if (prepared.statementType !== StatementType.SELECT) {
    prepared.destroySync();
    throw new LakeQueryError(`sql: only a SELECT (or WITH … SELECT) may run, not ${StatementType[prepared.statementType]}`);
  }
  return prepared;
}

/** The statement's first word, upper case, comments skipped: what the refusal names. */
export function leadingKeyword(sql: string): string {
  const bare = sql.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/--[^\n]*/g, " ").trim();
  return (/^[A-Za-z_]+/.exec(bare)?.[0] ?? "this statement").toUpperCase();
}

/** DuckDB's message without the caret lines it adds under a position. */
export function firstLine(message: string): string {
  return message.split("\n")[0].trim();
}
