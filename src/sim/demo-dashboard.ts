/**
 * The demo's dashboard (`WEIR_DEMO=1` with no `dashboard:` in the config
 * file, config.ts): a chart of one device per sensor metric, a gauge per
 * metric over every device (the ranges the simulator reads in, iot.ts,
 * with room for its spikes) and the shop's top pages by revenue. The page
 * itself knows none of these names (src/http/dashboard-def.ts).
 *
 * @example
 *   demoDashboard().gauges.map((g) => g.series); // ["sensor.temperature", "sensor.humidity", "sensor.pressure"]
 */
import { type DashboardDef, parseDashboard } from "../http/dashboard-def.ts";

export function demoDashboard(): DashboardDef {
  const got = parseDashboard({
    charts: ["sensor.temperature", "sensor.humidity", "sensor.pressure"],
    gauges: [
      { series: "sensor.temperature", label: "temperature", unit: "°C", min: -10, max: 40 },
      { series: "sensor.humidity", label: "humidity", unit: "%", min: 0, max: 100 },
      { series: "sensor.pressure", label: "pressure", unit: "hPa", min: 960, max: 1060 },
    ],
    top: { name: "shop.purchase", by: "page", agg: "sum", label: "top pages" },
  }, "demo");
  if ("error" in got) throw new Error(`the demo's dashboard: ${got.error}`); // a programmer error: the literal above is ours
  return got.def;
}
