/**
 * The entry of the one-file executable (`bun run build:exe` → dist/weir):
 * makes DuckDB's shared library loadable, then runs main.ts.
 *
 * Why: `bun build --compile` embeds `duckdb.node` and extracts it to a
 * temporary file when required, but not the 70 MB `libduckdb.so` it links
 * to, so the addon's dlopen fails ("libduckdb.so: cannot open shared object
 * file"). The library is embedded here as a file, written once to the temp
 * directory (named by its size, reused by later starts) and dlopen'ed
 * before anything imports DuckDB: the dynamic loader then resolves the
 * addon's dependency to the library already loaded (same soname), in the
 * main thread and in the lake worker alike. The lake imports DuckDB only at
 * its first use (src/lake/duck.ts), but the executable loads the library
 * here at start whatever the settings: its RSS with WEIR_LAKE=0 includes
 * it (loading it at the lake's first use instead is the next step).
 *
 * @example
 *   bun build --compile src/exe.ts … --outfile dist/weir   (scripts/build-exe.ts)
 */
import libduckdb from "../node_modules/@duckdb/node-bindings-linux-x64/libduckdb.so" with { type: "file" };
import { dlopen } from "bun:ffi";
import { existsSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Writes the embedded library out unless an identical-sized copy is there already; returns its path. */
async function extractLibrary(): Promise<string> {
  const blob = Bun.file(libduckdb);
  const out = join(tmpdir(), `weir-libduckdb-${blob.size}.so`);
  if (existsSync(out) && statSync(out).size === blob.size) return out;
  const partial = `${out}.${process.pid}.partial`; // a rename, so a concurrent start never loads half a file
  writeFileSync(partial, new Uint8Array(await blob.arrayBuffer()));
  renameSync(partial, out);
  return out;
}

if (Bun.isStandaloneExecutable) {
  // One symbol is enough for bun:ffi to open the library; the symbol itself is not used.
  dlopen(await extractLibrary(), { duckdb_library_version: { args: [], returns: "cstring" } });
}
await import("./main.ts");
