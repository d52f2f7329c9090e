/**
 * Structured JSON logs, one object per line on stderr.
 *
 * @example
 *   const log = createLog("info");
 *   log.info("listening", { port: 8080 });
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;
export interface Log {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLog(level: LogLevel, base: LogFields = {}, sink: (line: string) => void = defaultSink): Log {
  const min = rank[level];
  const write = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (rank[lvl] < min) return;
    sink(JSON.stringify({ ts: new Date().toISOString(), level: lvl, msg, ...base, ...fields }));
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}

function defaultSink(line: string): void {
  process.stderr.write(line + "\n");
}

/** A log that writes nothing: for tests and benches. */
export const silentLog: Log = createLog("error", {}, () => {});
