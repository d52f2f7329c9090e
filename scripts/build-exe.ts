/**
 * `bun run build:exe [outfile]`: weir as one executable (default dist/weir)
 * that serves the API and the dashboard with no node_modules beside it.
 *
 * Why each part: the worker threads' scripts are entrypoints of their own
 * (Bun bundles each one separately into the file and resolves
 * `new Worker(new URL("./x.ts", import.meta.url))` to it); the dashboard's
 * files are embedded with `assets` (web/ under web/, uPlot's two files at
 * the root, where static.ts looks when Bun.isStandaloneExecutable); DuckDB's
 * addons for other platforms are left out (only linux-x64 glibc is built
 * here), and its shared library is embedded by src/exe.ts.
 *
 * @example
 *   bun run build:exe /tmp/weir && /tmp/weir
 */
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const outfile = process.argv[2] ?? join(root, "dist/weir");
const otherPlatforms = ["linux-x64-musl", "linux-arm64", "linux-arm64-musl", "darwin-arm64", "darwin-x64", "win32-arm64", "win32-x64"];

/** The worker threads' entry files: each is spawned by URL relative to its spawner (engine, parse pool, lake, store). */
export const workerEntries = ["src/partition/worker.ts", "src/ingest/parse.worker.ts", "src/lake/lake.worker.ts", "src/storage/store-writer.worker.ts"];

const started = performance.now();
const result = await Bun.build({
  entrypoints: ["src/exe.ts", ...workerEntries].map((f) => join(root, f)),
  compile: { outfile, assets: [join(root, "web"), ...["uPlot.esm.js", "uPlot.min.css"].map((f) => join(root, "node_modules/uplot/dist", f))] },
  external: [...otherPlatforms.map((p) => `@duckdb/node-bindings-${p}/duckdb.node`), "detect-libc"],
  minify: true,
  naming: "[name].[ext]",
});
if (!result.success) {
  for (const m of result.logs) console.error(m);
  process.exit(1);
}
console.error(`weir: built ${outfile} in ${Math.round(performance.now() - started)} ms`);
