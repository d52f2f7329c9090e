#!/usr/bin/env bun
/**
 * `weir <command>` (also `bun run weir <command>`). `weir help` lists the
 * commands, `weir <command> --help` says what one does. Exit status: 0 done;
 * 1 an operating error (a damaged store or raw log, weir unreachable,
 * events that failed); 2 a bad command, flag or setting.
 *
 *   start         run weir (as `bun run start`), from WEIR_* settings
 *   sim           the demo's simulators against a running weir, over HTTP
 *   load          generated load against a running weir, with a JSON report (src/load/)
 *   export        a table of a running weir's lake to a file (src/lake/export-cli.ts)
 *   check-config  validate the WEIR_* settings and the config file, and say what they give
 *   verify        check the raw log's every record and the store's integrity (weir stopped)
 *   rebuild       move a damaged store aside and rebuild it from the raw log (weir stopped)
 *   repair-log    cut the raw log at its first damaged record (weir stopped)
 *
 * @example
 *   WEIR_DATA_DIR=./data bun run weir rebuild
 *   bun run weir load --rate 5000 --seconds 30
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
import { loadUsage, parseLoadOptions } from "./load/load-options.ts";
import { runLoad } from "./load/load-run.ts";

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

interface Command { usage: string; run: (args: string[]) => void | Promise<void> }

const withConfig = (fn: (cfg: Config) => void | Promise<void>) => () => fn(loadConfig());

const commands: Record<string, Command> = {
  start: { usage: "weir start: runs weir from WEIR_* settings (as bun run start); SIGTERM or SIGINT stop it gracefully", run: async () => {
    await import("./main.ts");
  } },
  sim: { usage: "weir sim [--url U] [--token T] [--rate N] [--seconds N] [--seed N] [--transport http|ws|nats] [--nats URL]: the demo's simulators against a running weir, over HTTP, /ws/ingest or NATS (scripts/simulate.ts)", run: async (args) => {
    process.argv = [process.argv[0], "simulate", ...args];
    await import("../scripts/simulate.ts");
  } },
  load: { usage: loadUsage, run: async (args) => {
    const o = parseLoadOptions(args, process.env, process.stderr.isTTY === true);
    const report = await runLoad(o, (p) => process.stderr.write(o.bar ? `\r${bar(p.fraction)} ${p.line}\x1b[K` : `${p.line}\n`));
    if (o.bar) process.stderr.write("\n");
    console.log(JSON.stringify(report));
    if (report.failed > 0) process.exit(1);
  } },
  export: { usage: "weir export --table T --from T0 --to T1 --format parquet|ndjson [--out FILE]: a table of a running weir's lake (WEIR_URL, WEIR_TOKEN)", run: async (args) => {
    say(await exportCommand(loadConfig(), args));
  } },
  "check-config": { usage: "weir check-config: validates the WEIR_* settings and the config file (WEIR_CONFIG) as start-up would, and prints what they give", run: withConfig(checkConfig) },
  verify: { usage: "weir verify: checks the raw log's every record and the store's integrity (weir stopped)", run: withConfig(verify) },
  rebuild: { usage: "weir rebuild: moves a damaged store aside (weir.db.damaged-<ms>) and rebuilds it from the raw log (weir stopped)", run: withConfig(rebuild) },
  "repair-log": { usage: "weir repair-log: cuts the raw log at its first damaged record, what follows is lost (weir stopped)", run: withConfig(repairLog) },
};

function checkConfig(cfg: Config): void {
  const summary = {
    dataDir: cfg.dataDir, host: cfg.host, port: cfg.port, partitions: cfg.partitions, windows: cfg.windowsText, latenessMs: cfg.latenessMs,
    nats: cfg.natsUrl ?? null, tokens: cfg.tokens.length, rules: cfg.rules.length, views: cfg.views.length, tables: Object.keys(cfg.tables).length, demo: cfg.demo,
  };
  console.log(JSON.stringify(summary));
  say("configuration ok");
}

function bar(fraction: number): string {
  const width = 30;
  const full = Math.round(fraction * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${(fraction * 100).toFixed(0).padStart(3)}%`;
}

const [name = "", ...args] = process.argv.slice(2);
if (name === "help" || name === "--help" || name === "") {
  process.stdout.write(`weir <command> [--help]\n${Object.entries(commands).map(([n, c]) => `  ${n.padEnd(13)} ${c.usage.split("\n")[0].replace(/^weir [^:]*: /, "")}`).join("\n")}\n`);
  process.exit(name === "" ? 2 : 0);
}
const command = commands[name];
if (!command) {
  say(`unknown command "${name}"; one of: ${Object.keys(commands).join(", ")} (weir help)`);
  process.exit(2);
}
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(`${command.usage}\n`);
  process.exit(0);
}
try {
  await command.run(args);
} catch (e) {
  exitOnOperatingError(e);
}
