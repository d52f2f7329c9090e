/**
 * README.md's "Limits and security" table is the one scripts/limits-table.ts
 * generates from src/runtime/limits.ts: a limit added, changed or removed
 * without the README following fails here.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { limitsTable } from "../scripts/limits-table.ts";

test("readme - the limits table equals the one generated from limits.ts (bun scripts/limits-table.ts to refresh it)", () => {
  const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
  const block = /<!-- limits:begin -->\n([\s\S]*?)\n<!-- limits:end -->/.exec(readme);
  expect(block).not.toBeNull();
  expect(block![1]).toBe(limitsTable());
  expect(limitsTable().split("\n").filter((l) => l.startsWith("| `")).length).toBeGreaterThan(150);
});
