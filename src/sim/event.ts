/**
 * The event the simulators produce: the API.md "Events" shape with `ts`
 * always set (epoch ms, an integer) so a replay with the same clock gives
 * the same windows.
 *
 * @example
 *   const e: SimEvent = { name: "shop.view", value: 1, ts: 1763800000000,
 *                         tags: { page: "/", segment: "new" } };
 */
export interface SimEvent {
  name: string;
  value: number;
  ts: number;
  tags: Record<string, string>;
  id?: string;
}
