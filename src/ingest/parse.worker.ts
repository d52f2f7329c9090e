/**
 * An ingest worker thread: parses and validates request bodies handed over
 * by the main thread (parse-pool.ts) and hands back their events columnar
 * (moved, not copied). It holds no state between
 * requests: a failed one answers its error's code and message.
 */
import { workerData } from "node:worker_threads";
import type { ParseBounds } from "../actors/ingest-parse.ts";
import { WeirError } from "../runtime/errors.ts";
import { parseBody } from "./parse-body.ts";
import type { ParseReply, ParseRequest } from "./parse-pool.ts";

/** Answers one request as parse-pool.ts expects (exported for a test's worker that wraps it). */
export function answer(m: ParseRequest, bounds: ParseBounds): void {
  const { id, bytes, format, recvMs } = m;
  let reply: ParseReply;
  try {
    const parsed = parseBody(bytes, format, recvMs, bounds);
    reply = { id, ok: true, parsed };
    postMessage(reply, { transfer: [parsed.index.buffer, parsed.ts.buffer, parsed.value.buffer, parsed.series.buffer] as Transferable[] });
  } catch (e) {
    const code = e instanceof WeirError ? e.code : "internal";
    reply = { id, ok: false, code, message: (e as Error).message };
    postMessage(reply);
  }
}

const { bounds } = workerData as { bounds: ParseBounds };
self.onmessage = (m: MessageEvent<ParseRequest>) => answer(m.data, bounds);
