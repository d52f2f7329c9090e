/**
 * `bun run weir export --table T --from F --to T --format parquet|ndjson
 * [--out FILE]`: asks a running weir (WEIR_URL, default the configured
 * host and port; WEIR_TOKEN a read token) for GET /api/v1/export and writes
 * the answer to FILE (default <table>.<format>) as it arrives, or to stdout
 * with --out -.
 *
 * @example
 *   WEIR_TOKEN=… bun run weir export --table events --from 2026-01-01 --to 2026-01-02 --format parquet --out day.parquet
 */
import { createWriteStream } from "node:fs";
import { parseArgs } from "node:util";
import type { Config } from "../config.ts";
import { LakeError } from "./errors.ts";

export async function exportCommand(cfg: Config, argv: string[], env: Record<string, string | undefined> = process.env): Promise<string> {
  const { values } = parseArgs({
    args: argv,
    options: { table: { type: "string" }, from: { type: "string" }, to: { type: "string" }, format: { type: "string", default: "parquet" }, out: { type: "string" } },
    strict: true,
  });
  if (values.table === undefined) throw new LakeError("export: --table is required (see GET /api/v1/catalog)");
  const base = env.WEIR_URL ?? `http://${cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host}:${cfg.port}`;
  const q = new URLSearchParams({ table: values.table, format: values.format ?? "parquet" });
  if (values.from !== undefined) q.set("from", values.from);
  if (values.to !== undefined) q.set("to", values.to);
  const res = await fetch(`${base}/api/v1/export?${q}`, { headers: env.WEIR_TOKEN ? { authorization: `Bearer ${env.WEIR_TOKEN}` } : {} });
  if (!res.ok || res.body === null) {
    const text = await res.text();
    let why = text;
    try {
      why = (JSON.parse(text) as { error: string }).error;
    } catch { /* not JSON: said as it came */ }
    throw new LakeError(`export: ${res.status} from ${base}: ${why}`);
  }
  const out = values.out ?? `${values.table}.${values.format}`;
  const sink = out === "-" ? process.stdout : createWriteStream(out);
  let bytes = 0;
  for await (const piece of res.body) {
    bytes += piece.byteLength;
    if (!sink.write(piece)) await new Promise((r) => sink.once("drain", r));
  }
  if (sink !== process.stdout) await new Promise<void>((r, j) => (sink as ReturnType<typeof createWriteStream>).end((e?: Error | null) => (e ? j(e) : r())));
  return `exported ${values.table} (${bytes} bytes) to ${out}`;
}
