/**
 * Process figures for /metrics as Prometheus names them, measured on Bun:
 * CPU seconds (all threads, getrusage), open file descriptors (Linux's
 * /proc/self/fd), start time, and the main thread's event-loop lag (how
 * late a timer fires: a busy main thread delays every request and live push).
 *
 * @example
 *   const lag = new EventLoopLag(); lag.start(); // engine start
 *   registerProcessMetrics(registry, lag);
 *   lag.stop();                                   // engine stop
 */
import { readdirSync } from "node:fs";
import type { Metrics } from "./metrics.ts";

const startSeconds = Date.now() / 1000 - performance.now() / 1000;

/** A timer every `everyMs`, and how late it fired: the last and the largest since the last read of the largest. */
export class EventLoopLag {
  last = 0;
  private maxSinceRead = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly everyMs = 500) {}

  start(): void {
    let due = performance.now() + this.everyMs;
    const tick = () => {
      const now = performance.now();
      this.last = Math.max(0, now - due) / 1000;
      if (this.last > this.maxSinceRead) this.maxSinceRead = this.last;
      due = now + this.everyMs;
      this.timer = setTimeout(tick, this.everyMs);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, this.everyMs);
    this.timer.unref();
  }

  /** The largest lag since the previous call (a scrape), then starts over. */
  takeMax(): number {
    const m = Math.max(this.maxSinceRead, this.last);
    this.maxSinceRead = 0;
    return m;
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Open file descriptors, or null where /proc is not there. */
export function openFds(): number | null {
  try {
    return readdirSync("/proc/self/fd").length - 1; // the directory's own
  } catch {
    return null;
  }
}

export function registerProcessMetrics(m: Metrics, lag: EventLoopLag): void {
  m.gauge("process_cpu_seconds_total", "CPU time of the process, all threads (user + system)", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }, "counter");
  if (openFds() !== null) m.gauge("process_open_fds", "Open file descriptors", () => openFds() ?? 0);
  m.gauge("process_start_time_seconds", "Start of the process, Unix time", () => startSeconds);
  m.gauge("weir_event_loop_lag_seconds", "How late the main thread's 500 ms timer fired, the largest since the previous scrape", () => lag.takeMax());
}
