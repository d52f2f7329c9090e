/**
 * The complaints example's producer: four hours of a support desk, sent now
 * through the emit() client with each event's own time (as a queue in
 * between would deliver them). Support's response time climbs past 48
 * hours from hour 1.5 to hour 2.5; sales stays fast. So the rule
 * `complaint-sla` of weir.yaml goes pending, fires 30 minutes later, and
 * resolves once the 30-minute average is back under 48 hours for 5 minutes.
 *
 *   bun examples/complaints/producer.ts            # WEIR_URL, WEIR_TOKEN if set
 */
import { createClient } from "../../src/client/emit.ts";

const url = process.env.WEIR_URL ?? "http://127.0.0.1:8080";
const weir = createClient({ url, token: process.env.WEIR_TOKEN });
const hourMs = 3_600_000;
const start = Math.floor((Date.now() - 4 * hourMs - 60_000) / 60_000) * 60_000;
let seed = 20261205;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);

let sent = 0;
for (let t = start; t < start + 4 * hourMs; t += 20_000) {
  const h = (t - start) / hourMs;
  const slow = h >= 1.5 && h < 2.5;
  const support = (slow ? 60 + 20 * rand() : 10 + 10 * rand()) * 3600; // seconds
  const sales = (4 + 4 * rand()) * 3600;
  weir.emit("complaint.response_time", Math.round(support), { team: "support" }, { ts: t });
  weir.emit("complaint.response_time", Math.round(sales), { team: "sales" }, { ts: t });
  if (rand() < 0.5) weir.emit("complaint.opened", 1, { team: rand() < 0.7 ? "support" : "sales" }, { ts: t });
  sent += 3;
  if (sent % 900 === 0) await weir.flush(); // keeps the client's buffer well under its bound
}
await weir.close();
const s = weir.stats();
console.log(JSON.stringify({ url, emitted: s.emitted, accepted: s.accepted, rejected: s.rejected, dropped: s.dropped, failed: s.failed }));
if (s.accepted + s.rejected !== s.emitted || s.dropped > 0 || s.failed > 0) process.exit(1);
