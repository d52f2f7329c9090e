/**
 * The engine's operating errors, each with its code (runtime/errors.ts):
 * HTTP maps them once (http/errors.ts), the CLI once (cli-messages.ts).
 */
import { WeirError } from "../runtime/errors.ts";
import { limits } from "../runtime/limits.ts";

/** Nothing of the request was accepted; answer 429/503 with Retry-After. */
export class OverloadedError extends WeirError {
  override name = "OverloadedError";
  constructor(message: string, readonly status: 429 | 503 = 503, readonly retryAfterSeconds: number = limits.retryAfterSeconds) {
    super("overloaded", message);
  }
}

/** A partition could not recover at start-up; the message says which and why. */
export class EngineStartError extends WeirError {
  override name = "EngineStartError";
  constructor(message: string) {
    super("start_failed", message);
  }
}

/** A request over a count bound (limits.eventsPerRequestMax): 413. */
export class TooLargeError extends WeirError {
  override name = "TooLargeError";
  constructor(message: string) {
    super("too_large", message);
  }
}
