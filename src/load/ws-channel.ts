/**
 * `weir load --transport ws`: one producer WebSocket to /ws/ingest. weir
 * answers each frame with one ack, in frame order, once its events are
 * durable, so the acks are matched to frames by order (a FIFO of waiters).
 *
 * @example
 *   const ch = await WsChannel.open("http://127.0.0.1:8080", token);
 *   const ack = await ch.send('[{"name":"a"}]'); // { seq: 1, accepted: 1, rejected: 0, … }
 *   ch.close();
 */
export interface FrameAck { seq: number; accepted: number; rejected: number; errors?: unknown[]; error?: string; retryAfter?: number }

const openMs = 5_000;

export class WsChannel {
  private readonly waiting: Array<{ resolve: (a: FrameAck) => void; reject: (e: Error) => void }> = [];
  private failed: Error | null = null;

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as FrameAck & { type: string };
      if (m.type === "ack") this.waiting.shift()?.resolve(m);
    };
    ws.onclose = (e) => this.fail(new Error(`/ws/ingest closed: ${e.code} ${e.reason}`));
  }

  static open(url: string, token: string | undefined): Promise<WsChannel> {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/ws/ingest${token === undefined ? "" : `?token=${encodeURIComponent(token)}`}`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${url}/ws/ingest: not open within ${openMs} ms`)), openMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new WsChannel(ws));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`${url}/ws/ingest: the socket failed (is the token an ingest one?)`));
      };
    });
  }

  /** Sends one frame; resolves with its ack (rejects if the socket closes first). */
  send(body: string): Promise<FrameAck> {
    if (this.failed !== null) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.ws.send(body);
    });
  }

  close(): void {
    this.ws.close();
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const w of this.waiting.splice(0)) w.reject(e);
  }
}
