/**
 * weir's one connection to NATS (WEIR_NATS_URL): it reconnects for ever,
 * waiting a bounded time between attempts, and says at any moment whether
 * it is connected, read from the client's status events (disconnect,
 * reconnect, close) rather than guessed from failed requests. Ingest in
 * NATS mode asks `connected()` to answer 503 at once while NATS is away
 * instead of waiting on a request timeout.
 *
 * @example
 *   const link = await connectNats(cfg.natsUrl!, { name: "weir" });
 *   const jsm = await jetstreamManager(link.nc, { timeout: limits.natsApiTimeoutMs });
 *   if (!link.connected()) throw new NatsUnavailableError(`nats: not connected to ${link.url}`);
 *   await link.close();
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsUnavailableError } from "./errors.ts";
import { limits } from "../runtime/limits.ts";

export interface NatsLinkOptions {
  /** The client name the server shows (connz), e.g. "weir-<host>-<pid>". */
  name?: string;
  /** Between reconnect attempts; default limits.natsReconnectWaitMs. */
  reconnectWaitMs?: number;
}

export interface NatsLink {
  readonly url: string;
  readonly nc: NatsConnection;
  /** Whether the client holds a live connection now. */
  connected(): boolean;
  /** Connections lost since connect (each a `disconnect` status). */
  disconnects(): number;
  /** Closes the connection (pending publishes and acks are flushed first) and stops watching it. */
  close(): Promise<void>;
}

/**
 * Connects once (failing with NatsUnavailableError if NATS cannot be reached
 * now), then reconnects for ever by itself.
 * @example const link = await connectNats("nats://127.0.0.1:4222");
 */
export async function connectNats(url: string, opts: NatsLinkOptions = {}): Promise<NatsLink> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: url,
      name: opts.name,
      timeout: limits.natsConnectTimeoutMs,
      maxReconnectAttempts: -1, // never give up: NATS coming back is the normal end of an outage
      reconnectTimeWait: opts.reconnectWaitMs ?? limits.natsReconnectWaitMs,
      reconnectJitter: limits.natsReconnectJitterMs,
      pingInterval: limits.natsPingIntervalMs,
      maxPingOut: limits.natsPingsOutstandingMax,
    });
  } catch (e) {
    throw new NatsUnavailableError(`nats: cannot connect to ${url}: ${(e as Error).message}`, { cause: e });
  }
  return watch(url, nc);
}

/** Follows the status iterator of `nc` into a connected flag; the iterator ends when `nc` closes. */
function watch(url: string, nc: NatsConnection): NatsLink {
  let connected = true; // connect() resolved: the first connection is up
  let disconnects = 0;
  const statuses = nc.status(); // registered now, so no status after connect is missed
  const watching = (async () => {
    for await (const s of statuses) {
      if (s.type === "disconnect") {
        connected = false;
        disconnects++;
      } else if (s.type === "staleConnection" || s.type === "close") {
        connected = false; // a stale link is dropped and redialled; a disconnect follows
      } else if (s.type === "reconnect") {
        connected = true;
      }
    }
  })();
  return {
    url,
    nc,
    connected: () => connected && !nc.isClosed(),
    disconnects: () => disconnects,
    async close() {
      if (!nc.isClosed()) await nc.close();
      await watching;
    },
  };
}
