/**
 * `bun run start`: weir from WEIR_* settings; SIGTERM/SIGINT stop it
 * gracefully (intake refused, rings drained, store flushed).
 */
import { ConfigError, loadConfig } from "./config.ts";
import { createLog } from "./runtime/log.ts";
import { EngineStartError } from "./engine.ts";
import { startWeir, type Weir } from "./server.ts";
import { StoreError } from "./storage/db.ts";
import { RawLogError } from "./storage/rawlog.ts";

let cfg;
try {
  cfg = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(`weir: ${e.message}`);
    process.exit(2);
  }
  throw e;
}
const log = createLog(cfg.logLevel);
let weir: Weir;
try {
  weir = await startWeir(cfg, log);
} catch (e) {
  // A damaged store or raw log is an operating error: say what and what to do, not a stack.
  if (e instanceof StoreError || e instanceof RawLogError || e instanceof EngineStartError) {
    console.error(`weir: ${e.message}`);
    if (e instanceof StoreError) console.error("weir: 'bun run weir rebuild' moves the store aside and rebuilds it from the raw log");
    process.exit(1);
  }
  throw e;
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
