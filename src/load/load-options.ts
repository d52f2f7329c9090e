/**
 * `weir load`'s flags, validated: every bound named, a bad value an error
 * naming the flag (exit status 2).
 *
 * @example
 *   parseLoadOptions(["--rate", "5000", "--seconds", "30", "--series", "1000"], env)
 *   // { url: "http://127.0.0.1:8080", ratePerSec: 5000, seconds: 30, events: null, connections: 4, batch: 500, series: 1000, … }
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { WeirError } from "../runtime/errors.ts";

export interface LoadOptions {
  url: string;
  token: string | undefined;
  /** Events per second over all connections; 0: as fast as weir takes them. */
  ratePerSec: number;
  /** The run ends after this many seconds or `events` events, whichever comes first. */
  seconds: number;
  events: number | null;
  connections: number;
  batch: number;
  series: number;
  transport: "http" | "ws";
  /** The window spec whose closes the end-to-end latency is measured on (default: weir's first). */
  window: string | null;
  /** Progress as a bar (a terminal) or as a line a second (anything else). */
  bar: boolean;
}

/** A bad flag: `weir load` exits with status 2 (cli-messages.ts). */
export class LoadOptionsError extends WeirError {
  override name = "LoadOptionsError";
  constructor(message: string) {
    super("bad_config", message);
  }
}

const whole = (flag: string, min: number, max: number) =>
  z.string().regex(/^\d+$/, `--${flag}: must be a whole number`).transform(Number)
    .pipe(z.number().min(min, `--${flag}: must be ≥ ${min}`).max(max, `--${flag}: must be ≤ ${max}`));

const schema = z.object({
  url: z.string().url("--url: must be a URL like http://127.0.0.1:8080"),
  token: z.string().optional(),
  rate: whole("rate", 0, 10_000_000),
  seconds: whole("seconds", 1, 86_400),
  events: whole("events", 1, 1_000_000_000).optional(),
  connections: whole("connections", 1, 256),
  batch: whole("batch", 1, 100_000),
  series: whole("series", 1, 1_000_000),
  transport: z.enum(["http", "ws"], { message: "--transport: http or ws" }),
  window: z.string().optional(),
});

export const loadUsage = `weir load [flags]: sends generated events to a running weir and prints a JSON report

  --url URL          weir's address (WEIR_URL; default http://127.0.0.1:8080)
  --token T          an ingest token (WEIR_TOKEN), also used to read /metrics and /ws/live
  --rate N           events per second over all connections; 0 = as fast as weir takes them (default 0)
  --seconds N        run at most this long (default 10, at most 86400)
  --events N         stop after this many events (default: no count bound)
  --connections N    concurrent senders (default 4, at most 256)
  --batch N          events per request (default 500, at most 100000)
  --series N         distinct series, load.events{s="0".."N-1"} (default 1000)
  --transport T      http (POST /api/v1/events, the default) or ws (one /ws/ingest socket per connection, a frame per batch)
  --window SPEC      the window whose closes time the end-to-end latency (default weir's first)

Each event has an id, so a request re-sent after 429/503 (its Retry-After honoured) or a lost answer lands once.
The report (stdout, one JSON object): sent, accepted, rejected, retried, failed, events/s, ack latency
p50/p95/p99, window delivery latency (window end → a /ws/live subscriber) p50/p95/p99, and weir's own
figures from /metrics (events ingested in the run, RSS, CPU seconds). Exit status 0, or 1 when events
failed, 2 for a bad flag.`;

export function parseLoadOptions(argv: string[], env: Record<string, string | undefined>, isTty: boolean): LoadOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv, strict: true,
      options: Object.fromEntries(["url", "token", "rate", "seconds", "events", "connections", "batch", "series", "transport", "window"].map((k) => [k, { type: "string" as const }])),
    }).values;
  } catch (e) {
    throw new LoadOptionsError((e as Error).message);
  }
  const r = schema.safeParse({
    url: values.url ?? env.WEIR_URL ?? "http://127.0.0.1:8080", token: values.token ?? env.WEIR_TOKEN, rate: values.rate ?? "0",
    seconds: values.seconds ?? "10", events: values.events, connections: values.connections ?? "4", batch: values.batch ?? "500",
    series: values.series ?? "1000", transport: values.transport ?? "http", window: values.window,
  });
  if (!r.success) throw new LoadOptionsError(r.error.issues[0].message);
  const v = r.data;
  return {
    url: v.url.replace(/\/$/, ""), token: v.token, ratePerSec: v.rate, seconds: v.seconds, events: v.events ?? null, connections: v.connections,
    batch: v.batch, series: v.series, transport: v.transport, window: v.window ?? null, bar: isTty,
  };
}
