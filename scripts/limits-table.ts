/**
 * The README's "Limits and security" table, generated from
 * src/runtime/limits.ts: every bound with its value and what its comment
 * says, by the section comments of that file. `test/readme-limits.test.ts`
 * checks that README.md holds exactly this table, so a new limit cannot go
 * undocumented.
 *
 *   bun scripts/limits-table.ts            # prints the table (markdown)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { limits } from "../src/runtime/limits.ts";

const source = join(import.meta.dir, "..", "src", "runtime", "limits.ts");

/** The markdown table of every limit, in the file's order, under its section headings. */
export function limitsTable(text = readFileSync(source, "utf8")): string {
  const body = text.slice(text.indexOf("export const limits = {"), text.indexOf("\n} as const;"));
  const out = ["| limit | value | what it bounds, and what happens past it |", "|---|---|---|"];
  for (const line of body.split("\n").slice(1)) {
    const section = /^ {2}\/\/ (.+?)\.?$/.exec(line);
    if (section !== null) {
      out.push(`| **${section[1]}** | | |`);
      continue;
    }
    const m = /^ {2}([A-Za-z]\w*): .*?,(?: \/\/ (.*))?$/.exec(line);
    if (m === null) continue;
    const [, name, comment = ""] = m;
    out.push(`| \`${name}\` | ${format(name, (limits as Record<string, unknown>)[name])} | ${comment.replace(/\|/g, "\\|")} |`);
  }
  return out.join("\n");
}

/** A value as a person reads it: bytes in KiB/MiB/GiB, times in s/min/h/d, counts with separators. */
function format(name: string, v: unknown): string {
  if (typeof v !== "number") return `\`${JSON.stringify(v)}\``;
  if (/Bytes/.test(name) && v >= 1024) {
    for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 1024]] as const) if (v % size === 0) return `${v / size} ${unit}`;
  }
  if (/Ms(Max|Min|Default)?$|Ms[A-Z]/.test(name) && v >= 1000 && v % 1000 === 0) {
    for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["min", 60_000], ["s", 1000]] as const) if (v % size === 0) return `${v / size} ${unit}`;
  }
  return v.toLocaleString("en-US");
}

if (import.meta.main) console.log(limitsTable());
