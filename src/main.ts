/**
 * `bun run start`: weir from WEIR_* settings; SIGTERM/SIGINT stop it
 * gracefully (intake refused, rings drained, store flushed).
 */
import { ConfigError, loadConfig } from "./runtime/config.ts";
import { createLog } from "./runtime/log.ts";
import { startWeir } from "./server.ts";

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
const weir = await startWeir(cfg, log);
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
