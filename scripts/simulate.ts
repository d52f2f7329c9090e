/**
 * The demo's simulators as a producer of their own: IoT readings and shop
 * activity sent to any weir over HTTP through the emit() client (batching,
 * ids, retries honouring Retry-After, a bounded buffer), as a producer on
 * another machine would send them.
 *
 *   bun run simulate -- --url http://127.0.0.1:8080 --rate 200 --seconds 60
 *
 * Options: --url (WEIR_URL, default http://127.0.0.1:8080), --token
 * (WEIR_TOKEN), --rate events/s (default 200), --seconds to run (default
 * 60, at most 86,400), --seed. Prints the client's figures at the end and
 * exits 1 if any event was dropped or failed.
 */
import { parseArgs } from "node:util";
import { createClient } from "../src/client/emit.ts";
import { startSimulators } from "../src/sim/runner.ts";

const { values } = parseArgs({
  options: { url: { type: "string" }, token: { type: "string" }, rate: { type: "string" }, seconds: { type: "string" }, seed: { type: "string" } },
});
const url = values.url ?? process.env.WEIR_URL ?? "http://127.0.0.1:8080";
const rate = Number(values.rate ?? 200);
const seconds = Number(values.seconds ?? 60);
if (!(rate > 0 && rate <= 50_000) || !(seconds > 0 && seconds <= 86_400)) {
  console.error("simulate: --rate must be in (0, 50000] events/s and --seconds in (0, 86400]");
  process.exit(2);
}
const weir = createClient({ url, token: values.token ?? process.env.WEIR_TOKEN });
const sims = startSimulators({
  ratePerSec: rate,
  seed: values.seed === undefined ? undefined : Number(values.seed),
  emit: (batch) => {
    let all = true;
    for (const e of batch) all = weir.emit(e.name, e.value, e.tags, { ts: e.ts }) && all;
    return all; // false: the client's buffer was full (counted in its figures as dropped)
  },
});
await Bun.sleep(seconds * 1000); // the run's length: the simulators tick on their own timer meanwhile
sims.stop();
await weir.close();
const s = weir.stats();
console.log(JSON.stringify({ url, emitted: s.emitted, accepted: s.accepted, rejected: s.rejected, dropped: s.dropped, failed: s.failed }));
if (s.dropped > 0 || s.failed > 0) process.exit(1);
