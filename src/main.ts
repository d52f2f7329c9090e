/**
 * `bun run start`: weir from WEIR_* settings; SIGTERM/SIGINT stop it
 * gracefully (intake refused, rings drained, store flushed).
 */
import { exitOnOperatingError } from "./cli-messages.ts";
import { type Config, loadConfig, unknownSettings } from "./config.ts";
import { createLog } from "./runtime/log.ts";
import { startWeir, type Weir } from "./server.ts";

let cfg: Config;
try {
  cfg = loadConfig();
} catch (e) {
  exitOnOperatingError(e); // a bad setting: its message and status 2, not a stack
}
const log = createLog(cfg.logLevel);
for (const u of unknownSettings(process.env)) log.warn("unknown setting, ignored", { key: u.key, ...(u.meant === null ? {} : { meant: u.meant }) });
let weir: Weir;
try {
  weir = await startWeir(cfg, log);
} catch (e) {
  exitOnOperatingError(e); // a damaged store or raw log: say what and what to do, not a stack
}
if (cfg.demo) console.error(`weir: dashboard at ${weir.url}/ (simulators on, ${cfg.demoRatePerSec} events/s)`);

let stopping = false;
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal: sig });
    await weir.stop();
    log.info("stopped");
    process.exit(0);
  });
}
