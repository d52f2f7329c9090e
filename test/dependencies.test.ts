/**
 * The direction of dependencies DESIGN.md asks for, checked on the source:
 * src/runtime/ hosts any actor and knows no role (it imports nothing of
 * weir outside itself), and the actors' pure logic reaches only the runtime
 * and the sketches (no threads' wiring, storage, HTTP or engine). A new
 * import that breaks either fails here, naming the file and the import.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const src = resolve(import.meta.dir, "../src");

/** Every relative import (static, re-export or dynamic) of a file, resolved to a path under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|new URL\(\s*)"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]);
  return specs.map((s) => relative(src, resolve(dirname(file), s)));
}

/** Imports of the .ts files in `folder` (under src/) that leave the folders in `allowed`, as "file → import". */
function violations(folder: string, allowed: string[]): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(src, folder)).filter((f) => f.endsWith(".ts"))) {
    const file = join(src, folder, name);
    for (const target of importsOf(file)) {
      if (!allowed.some((a) => target.startsWith(a + "/"))) out.push(`${folder}/${name} → ${target}`);
    }
  }
  return out;
}

describe("dependencies", () => {
  test("dependencies - src/runtime imports nothing of weir outside src/runtime", () => {
    expect(violations("runtime", ["runtime"])).toEqual([]);
  });

  test("dependencies - src/actors import only the runtime, the sketches and each other", () => {
    expect(violations("actors", ["actors", "runtime", "sketch"])).toEqual([]);
  });

  test("dependencies - the rules' pure logic reaches only the actors, the runtime and the sketches; the emit() client imports nothing of weir", () => {
    expect(violations("actors/rules", ["actors", "runtime", "sketch"])).toEqual([]);
    expect(violations("client", ["client"])).toEqual([]); // producers import it alone, in a browser too
  });

  test("dependencies - HTTP reaches the engine only through its ports (engine/ports.ts), never the engine's parts", () => {
    const engineImports = [...violations("http", []), ...violations("http/routes", [])].filter((v) => v.includes("→ engine/"));
    expect(engineImports.filter((v) => !v.endsWith("→ engine/ports.ts"))).toEqual([]);
    expect(engineImports.length).toBeGreaterThan(0); // the check sees them: app.ts does import the ports
  });

  test("dependencies - the check sees imports: the partition worker's wiring does reach the actors", () => {
    expect(violations("partition", ["partition", "runtime"]).some((v) => v.startsWith("partition/partition-loop.ts → actors/"))).toBe(true);
  });
});
