/**
 * One producer socket of GET /ws/ingest (API.md "Ingest"): each frame, a
 * JSON (text) or MessagePack (binary) event or array, is answered by one
 * ack, in frame order, only once its events are durable:
 *
 *   {"type":"ack","seq":k,"accepted":n,"rejected":m,"errors":[{"index","error"}]}
 *
 * plus `"error"` when nothing of the frame was taken (unparseable, no event
 * valid), and `"retryAfter"` (seconds) when the engine was overloaded: the
 * client sends that frame again. Bad input never closes the socket.
 *
 * Order: a frame is handed to the engine only once the previous frame has
 * been taken (its events pushed to the partitions), so a producer's frames
 * reach each series in the order sent, as its HTTP requests would one after
 * the other; waiting for durability (the group commit's fsync) overlaps.
 *
 * Backpressure by withholding acks: at `framesInFlightMax` frames awaiting
 * their ack the socket stops reading (Bun's ws.pause(): the client's sends
 * fill TCP's window and block) and reads again after the next ack. Frames
 * Bun had read before the pause are still taken; past `framesQueuedMax` the
 * socket is closed with 1013 (try again later), which bounds a client that
 * writes regardless.
 *
 * @example
 *   const s = new WsIngestSession({ ingest: (b, f) => engine.ingestBytes(b, f), send, pause, resume, close, describe });
 *   s.frame('{"name":"a","value":1}'); // → send('{"type":"ack","seq":1,"accepted":1,"rejected":0,"errors":[]}')
 */
import type { BodyFormat } from "../actors/ingest-body.ts";
import type { EngineOutcome } from "../engine/ports.ts";

/** What a failed frame is answered with: the error's text, and seconds to wait when it was an overload. */
export interface FrameFailure { error: string; retryAfter?: number }

export interface WsIngestIo {
  ingest(bytes: Uint8Array, format: BodyFormat): Promise<EngineOutcome>;
  send(text: string): void;
  pause(): void;
  resume(): void;
  close(code: number, reason: string): void;
  /** An error thrown by ingest (or its durability) as the ack says it. */
  describe(e: unknown): FrameFailure;
}

export interface WsIngestBounds { framesInFlightMax: number; framesQueuedMax: number }

const encoder = new TextEncoder();
type Ack = { type: "ack"; seq: number; accepted: number; rejected: number; errors: unknown[]; error?: string; retryAfter?: number };

export class WsIngestSession {
  private seq = 0;
  /** Frames received and not yet acked. */
  private awaiting = 0;
  private paused = false;
  private closed = false;
  /** Settles when the previous frame has been taken by the engine (whatever the outcome). */
  private taken: Promise<unknown> = Promise.resolve();
  /** Settles when the previous frame's ack has gone out. */
  private acked: Promise<void> = Promise.resolve();

  constructor(private readonly io: WsIngestIo, private readonly bounds: WsIngestBounds) {}

  /** A frame as the socket delivered it: text is JSON, binary is MessagePack. */
  frame(data: string | ArrayBuffer | Uint8Array): void {
    if (this.closed) return;
    const seq = ++this.seq;
    this.awaiting++;
    if (this.awaiting > this.bounds.framesQueuedMax) {
      this.close(1013, `more than ${this.bounds.framesQueuedMax} frames awaiting their ack: wait for acks before sending`);
      return;
    }
    if (this.awaiting >= this.bounds.framesInFlightMax && !this.paused) {
      this.paused = true;
      this.io.pause();
    }
    const text = typeof data === "string";
    const bytes = text ? encoder.encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
    const outcome = this.taken.then(() => this.io.ingest(bytes, text ? "json" : "msgpack"));
    this.taken = outcome.catch(() => {});
    const ack = outcome.then((o) => this.durableAck(seq, o)).catch((e) => this.failedAck(seq, e));
    this.acked = this.acked.then(() => ack).then((a) => this.sendAck(a));
  }

  /** The socket closed: acks still due are dropped (the client re-sends what it saw no ack for). */
  close(code?: number, reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (code !== undefined) this.io.close(code, reason ?? "");
  }

  private async durableAck(seq: number, o: EngineOutcome): Promise<Ack> {
    if (o.durable) await o.durable;
    const ack: Ack = { type: "ack", seq, accepted: o.accepted, rejected: o.rejected, errors: o.errors };
    if (o.accepted === 0) ack.error = o.rejected === 0 ? "frame: no event in it" : "no event valid";
    return ack;
  }

  private failedAck(seq: number, e: unknown): Ack {
    const f = this.io.describe(e);
    return { type: "ack", seq, accepted: 0, rejected: 0, errors: [], ...f };
  }

  private sendAck(ack: Ack): void {
    this.awaiting--;
    if (this.closed) return;
    this.io.send(JSON.stringify(ack));
    if (this.paused && this.awaiting < this.bounds.framesInFlightMax) {
      this.paused = false;
      this.io.resume();
    }
  }
}
