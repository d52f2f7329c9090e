/**
 * Operating errors as a person at the terminal reads them: the message,
 * then what to do where there is something to do; the exit status says
 * which kind (2 for a bad setting, 1 for the rest). Used by `bun run start`
 * (src/main.ts) and `bun run weir` (src/cli.ts). A programmer error is not
 * mapped: its stack is printed.
 *
 * @example
 *   const m = cliMessageOf(e); if (m === null) throw e;
 *   for (const line of m.lines) console.error(`weir: ${line}`); process.exit(m.exitCode);
 */
import { WeirError } from "./runtime/errors.ts";

export interface CliMessage { lines: string[]; exitCode: 1 | 2 }

export function cliMessageOf(e: unknown): CliMessage | null {
  if (!(e instanceof WeirError)) return null;
  const lines = [e.message];
  if (e.code === "store") lines.push("'bun run weir rebuild' moves the store aside and rebuilds it from the raw log");
  if (e.code === "raw_log" || e.code === "raw_record") {
    lines.push("'bun run weir verify' names the segment and position; 'bun run weir repair-log' cuts the log there and rebuilds what it must");
  }
  return { lines, exitCode: e.code === "bad_config" ? 2 : 1 };
}

/** Prints an operating error's message to stderr and exits with its status; rethrows anything else. */
export function exitOnOperatingError(e: unknown): never {
  const m = cliMessageOf(e);
  if (m === null) throw e;
  for (const line of m.lines) process.stderr.write(`weir: ${line}\n`);
  process.exit(m.exitCode);
}
