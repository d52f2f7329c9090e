/**
 * HTTP ingest in NATS mode (API.md "Ingest": 202 once JetStream has
 * acknowledged): a body is validated here for the answer (its counts, its
 * errors, 400 when no event is valid), then published whole to
 * `weir.ingest.http` with its Content-Type and receive time, and answered
 * once JetStream has stored it. The consumer (ingest-consumer.ts) takes it
 * like any producer's message, validating it again against the same
 * receive time, so the answer and what is aggregated agree. While NATS is
 * away the answer is 503 + Retry-After, within limits.natsPublishTimeoutMs.
 *
 * With `pii` configured the body is not published as received (it would
 * put sensitive values into JetStream): its valid events are, as parsed
 * and scrubbed, in JSON, and its invalid ones are dead-lettered here (the
 * consumer never sees them). The consumer's second scrub changes nothing.
 *
 * @example createApp({ ingest: new NatsHttpIngest(link, js, cfg), ... })
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { type BodyFormat, contentTypeOf } from "../actors/ingest-body.ts";
import type { ParseBounds, ParsedEvents, ParseReject } from "../actors/ingest-parse.ts";
import { OverloadedError } from "../engine/errors.ts";
import type { EngineOutcome, IngestPort } from "../engine/ports.ts";
import { parseBody } from "../ingest/parse-body.ts";
import { limits } from "../runtime/limits.ts";
import type { NatsLink } from "./connection.ts";
import { recvMsHeader } from "./ingest-consumer.ts";
import { ingestSubject } from "./subjects.ts";

const httpSubject = ingestSubject("http");

export class NatsHttpIngest implements IngestPort {
  /** `refused`: a body with no valid event is not published, so its events are counted and dead-lettered here. */
  constructor(
    private readonly link: NatsLink, private readonly js: JetStreamClient, private readonly bounds: ParseBounds,
    private readonly refused: (rejects: readonly ParseReject[], recvMs: number) => void,
  ) {}

  async ingestBytes(bytes: Uint8Array, format: BodyFormat): Promise<EngineOutcome> {
    const recvMs = Date.now();
    const parsed = parseBody(bytes, format, recvMs, this.bounds); // BodyError, TooLargeError: 400, 413
    const rejected = parsed.rejects.length;
    const outcome: EngineOutcome = {
      accepted: parsed.n, duplicates: 0, rejected, reasons: {}, rejects: [],
      errors: parsed.rejects.slice(0, limits.errorsListedMax).map((r) => ({ index: r.index, error: r.error })),
    };
    if (parsed.n === 0) {
      this.refused(parsed.rejects, recvMs); // 400: nothing to publish, nothing the consumer will count
      return outcome;
    }
    if (!this.link.connected()) throw new OverloadedError(`nats: not connected to ${this.link.url}`, 503, limits.retryAfterSeconds);
    const scrubbed = this.bounds.pii !== undefined;
    const h = headers();
    h.set("Content-Type", contentTypeOf(scrubbed ? "json" : format));
    h.set(recvMsHeader, String(recvMs));
    try {
      await this.js.publish(httpSubject, scrubbed ? scrubbedBody(parsed) : bytes, { headers: h, timeout: limits.natsPublishTimeoutMs });
    } catch (e) {
      throw new OverloadedError(`nats: publish not acknowledged: ${(e as Error).message}`, 503, limits.retryAfterSeconds);
    }
    if (scrubbed) this.refused(parsed.rejects, recvMs); // published without them: counted and dead-lettered here, once
    return outcome;
  }
}

/** The valid events of a parsed body as a JSON array (their tags and props already scrubbed by parseEvents). */
function scrubbedBody(parsed: ParsedEvents): Uint8Array {
  const events: object[] = [];
  for (let k = 0; k < parsed.n; k++) {
    const d = parsed.distinct[parsed.series[k]];
    const id = parsed.ids?.[k];
    const props = parsed.props?.[k];
    events.push({
      name: d.name, value: parsed.value[k], ts: parsed.ts[k],
      ...(d.tags === undefined ? {} : { tags: d.tags }), ...(id === undefined ? {} : { id }), ...(props === undefined ? {} : { props }),
    });
  }
  return new TextEncoder().encode(JSON.stringify(events));
}
