/**
 * `bun run weir <command>`: maintenance on a stopped weir's data directory
 * (WEIR_DATA_DIR and the other WEIR_* settings, as for `bun run start`).
 *
 *   rebuild      move a damaged store aside (weir.db.damaged-<ms>) and rebuild
 *                it from the raw log: series, windows, anomalies, trends, checkpoints
 *   verify       check the raw log's every record and the store's integrity
 *   repair-log   cut the raw log at its first damaged record (what follows is lost)
 *   export       a table of a running weir's lake to a file: --table T --from --to
 *                --format parquet|ndjson [--out FILE] (WEIR_URL, WEIR_TOKEN; src/lake/export-cli.ts)
 *
 * @example
 *   WEIR_DATA_DIR=./data bun run weir rebuild
 */
import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import { exitOnOperatingError } from "./cli-messages.ts";
import { Engine } from "./engine/engine.ts";
import { loadConfig, type Config } from "./config.ts";
import { createLog } from "./runtime/log.ts";
import { openStore } from "./storage/db.ts";
import { RawLog, RawLogError, truncateRawLogAt, verifyRawLog } from "./storage/rawlog.ts";
import { exportCommand } from "./lake/export-cli.ts";

const say = (line: string) => process.stderr.write(`weir: ${line}\n`);

async function rebuild(cfg: Config): Promise<void> {
  const raw = join(cfg.dataDir, "raw");
  const first = new RawLog(raw, { profile: "fast" });
  const from = first.firstPosition();
  first.close();
  if (from > 0) {
    throw new RawLogError(`the raw log starts at position ${from} (older segments were pruned by WEIR_RETENTION_RAW): a rebuild would miss them`);
  }
  verifyRawLog(raw);
  const stamp = Date.now();
  for (const suffix of ["", "-wal", "-shm"]) {
    const f = join(cfg.dataDir, `weir.db${suffix}`);
    if (existsSync(f)) renameSync(f, join(cfg.dataDir, `weir.db.damaged-${stamp}${suffix}`));
  }
  // A fresh store has no checkpoint: every partition replays the whole log, then a graceful stop commits.
  const engine = await Engine.start(cfg, createLog(cfg.logLevel));
  const replayed = Array.from({ length: cfg.partitions }, (_, p) => engine.replayedEvents(p)).reduce((a, b) => a + b, 0);
  await engine.stop();
  say(`rebuilt ${join(cfg.dataDir, "weir.db")} from the raw log: ${replayed} events replayed, ${engine.registry.size} series`);
}

function verify(cfg: Config): void {
  const v = verifyRawLog(join(cfg.dataDir, "raw"));
  say(`raw log ok: ${v.segments} segments, ${v.records} records, ${v.bytes} bytes`);
  openStore(join(cfg.dataDir, "weir.db")).close(); // runs quick_check
  say("store ok");
}

async function repairLog(cfg: Config): Promise<void> {
  const raw = join(cfg.dataDir, "raw");
  try {
    verifyRawLog(raw);
    say("raw log ok: nothing to repair");
  } catch (e) {
    const position = e instanceof RawLogError ? e.position : undefined;
    if (position === undefined) throw e;
    truncateRawLogAt(raw, position);
    say(`raw log cut at position ${position} (${(e as Error).message})`);
    // A checkpoint past the cut reflects records that are gone, and new records would reuse its positions:
    // the store is rebuilt from what the log still holds.
    const store = openStore(join(cfg.dataDir, "weir.db"));
    const ahead = [...store.query("SELECT partition FROM checkpoints WHERE pos >= ?").all(position)].length;
    store.close();
    if (ahead > 0) {
      say(`${ahead} partition checkpoint(s) lie past the cut: rebuilding the store from the log`);
      await rebuild(cfg);
    }
  }
}

const commands: Record<string, (cfg: Config) => void | Promise<void>> = {
  rebuild, verify, "repair-log": repairLog,
  export: async (cfg) => {
    say(await exportCommand(cfg, process.argv.slice(3)));
  },
};

const name = process.argv[2] ?? "";
const command = commands[name];
if (!command) {
  say(`unknown command "${name}"; one of: ${Object.keys(commands).join(", ")}`);
  process.exit(2);
}
try {
  await command(loadConfig());
} catch (e) {
  exitOnOperatingError(e);
}
