/**
 * Server-Sent Events read from a fetch response, for the live tests.
 *
 * @example
 *   const out: Array<{ event: string; data: unknown }> = [];
 *   const sse = readSse(await fetch(`${url}/api/v1/stream?topic=alerts`), out);
 *   await sse.cancel();
 */
/** Reads Server-Sent Events from a response into `out` ({event, data}) until the stream ends or is cancelled. */
export function readSse(res: Response, out: Array<{ event: string; data: unknown }>): { cancel: () => Promise<void> } {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) out.push({ event, data: JSON.parse(data) });
      }
    }
  })();
  return { cancel: () => reader.cancel() };
}
