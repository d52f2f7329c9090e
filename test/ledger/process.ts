/**
 * weir as a real child process (`bun src/main.ts`), for tests that kill it:
 * port 0 (so each start has its own URL, read from the "weir listening" log
 * line), one data directory kept across restarts, the child's log lines kept
 * in a bounded tail for failure messages. Every wait has a deadline.
 *
 * An exit that this object did not ask for (a failpoint's self-kill, a
 * crash) is a "crash": it is recorded and reported to `onCrash`, and the
 * owner decides whether to restart.
 *
 * @example
 *   const w = await WeirProcess.start({ dataDir });
 *   const url = await w.endpoint();   // waits while the server is down
 *   await w.kill9();
 *   const recoveryMs = await w.restart();
 *   await w.close();
 */
import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";

export interface WeirProcessOptions {
  dataDir: string;
  /** WEIR_* settings on top of the defaults below, for every start. */
  env?: Record<string, string>;
  repoRoot?: string;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

export interface ExitRecord {
  pid: number;
  code: number | null;
  signal: string | null;
  /** Asked for by kill9() / term() / close(); otherwise a crash. */
  expected: boolean;
}

export class WeirProcessError extends Error {
  override name = "WeirProcessError";
}

const repoRootDefault = join(import.meta.dir, "..", "..");
const startTimeoutMsDefault = 30_000;
const stopTimeoutMsDefault = 20_000;
const logLinesMax = 300;
const logLineCharsMax = 1_000;
const endpointWaitersMax = 256;

interface Run {
  child: Subprocess<"ignore", "pipe", "pipe">;
  expectingExit: boolean;
  /** The stdout / stderr readers: they end when the child's pipes close. */
  pumps: Promise<void>[];
  exit: Promise<ExitRecord>;
}

export class WeirProcess {
  /** The URL of the current start, or "" before the first. */
  url = "";
  /** Milliseconds from spawn to /ready 200, one per start. */
  readonly recoveryMs: number[] = [];
  readonly exits: ExitRecord[] = [];
  onCrash: ((exit: ExitRecord) => void) | null = null;
  private run: Run | null = null;
  private ready = false;
  private closedError: Error | null = null;
  private waiters: Array<{ resolve: (url: string) => void; reject: (e: Error) => void }> = [];
  private readonly log: string[] = [];

  private constructor(readonly opts: WeirProcessOptions) {}

  /** Spawns weir and waits for /ready; `extraEnv` (e.g. WEIR_CRASH_AT) is for this first start only. */
  static async start(opts: WeirProcessOptions, extraEnv: Record<string, string> = {}): Promise<WeirProcess> {
    const w = new WeirProcess(opts);
    await w.spawn(extraEnv);
    return w;
  }

  get alive(): boolean {
    return this.run !== null;
  }

  get pid(): number | null {
    return this.run?.child.pid ?? null;
  }

  /** The URL of a ready server; while none is, waits for the next start (rejects once closed). */
  endpoint(): Promise<string> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.ready) return Promise.resolve(this.url);
    assert(this.waiters.length < endpointWaitersMax, "too many callers waiting for weir");
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Starts again on the same data directory with the base settings; resolves the recovery time (spawn → /ready 200). */
  restart(): Promise<number> {
    return this.spawn({});
  }

  /** SIGKILL, then waits for the exit. */
  async kill9(): Promise<ExitRecord> {
    return this.stopWith("SIGKILL");
  }

  /** SIGTERM (the graceful path), then waits for the exit; resolves the exit code. */
  async term(): Promise<number | null> {
    return (await this.stopWith("SIGTERM")).code;
  }

  /** Stops the child if it runs (SIGTERM, SIGKILL past the deadline) and fails every waiting endpoint() call. */
  async close(reason = "weir process closed"): Promise<void> {
    this.closedError ??= new WeirProcessError(reason);
    for (const w of this.waiters.splice(0)) w.reject(this.closedError);
    if (this.run === null) return;
    try {
      await this.stopWith("SIGTERM");
    } catch {
      if (this.run !== null) await this.stopWith("SIGKILL");
    }
  }

  /** The child's last log lines (all starts, oldest first), for a failure message. */
  logTail(lines = 60): string {
    return this.log.slice(-lines).join("\n");
  }

  /** GET /metrics, summed by metric name over label sets; null if it does not answer. */
  async scrape(): Promise<Map<string, number> | null> {
    if (!this.ready) return null;
    try {
      const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
      if (res.status !== 200) return null;
      return parseMetrics(await res.text());
    } catch {
      return null; // killed meanwhile: the caller counts a missing scrape
    }
  }

  private async spawn(extraEnv: Record<string, string>): Promise<number> {
    assert(this.run === null, "spawn while a child runs");
    if (this.closedError) throw this.closedError;
    const t0 = performance.now();
    const { run, urlSeen } = this.spawnChild(extraEnv);
    const deadline = performance.now() + (this.opts.startTimeoutMs ?? startTimeoutMsDefault);
    try {
      const url = await this.beforeDeadline(urlSeen, run, deadline, 'the "weir listening" log line');
      await this.waitReady(url, run, deadline);
      this.url = url;
    } catch (e) {
      if (this.isCurrent(run)) {
        run.expectingExit = true;
        run.child.kill("SIGKILL");
        await run.exit;
      }
      throw e;
    }
    const ms = performance.now() - t0;
    this.recoveryMs.push(ms);
    this.ready = true;
    for (const w of this.waiters.splice(0)) w.resolve(this.url);
    return ms;
  }

  private spawnChild(extraEnv: Record<string, string>): { run: Run; urlSeen: Promise<string> } {
    const root = this.opts.repoRoot ?? repoRootDefault;
    const child = Bun.spawn([bunBinary(), "src/main.ts"], {
      cwd: checkRoot(root), env: this.childEnv(extraEnv), stdin: "ignore", stdout: "pipe", stderr: "pipe",
    });
    let listening: (url: string) => void = () => {};
    const urlSeen = new Promise<string>((resolve) => { listening = resolve; });
    const onLine = (line: string) => this.keepLine(child.pid, line, listening);
    const extra = Object.keys(extraEnv).length > 0 ? ` ${JSON.stringify(extraEnv)}` : "";
    this.keepLine(child.pid, `--- spawn pid ${child.pid}${extra} ---`, listening);
    const pumps = [pumpLines(child.stdout, onLine), pumpLines(child.stderr, onLine)];
    const run: Run = { child, expectingExit: false, pumps, exit: child.exited.then(() => this.exited(run)) };
    this.run = run;
    return { run, urlSeen };
  }

  private childEnv(extraEnv: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = {};
    // The caller's own WEIR_* settings would change what the checker must expect: none are inherited.
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("WEIR_")) env[k] = v;
    return {
      ...env, WEIR_PORT: "0", WEIR_DATA_DIR: this.opts.dataDir, WEIR_PARTITIONS: "2", WEIR_LOG_LEVEL: "info",
      ...this.opts.env, ...extraEnv,
    };
  }

  private async waitReady(url: string, run: Run, deadline: number): Promise<void> {
    for (;;) {
      this.assertRunning(run, "/ready 200");
      const status = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status, () => 0);
      if (status === 200) return;
      if (performance.now() > deadline) throw this.failure(`weir not ready at ${url} before the deadline (last status ${status})`);
      await Bun.sleep(readyPollMs);
    }
  }

  /** Resolves `p`, or throws if the child exits first or the deadline passes. */
  private async beforeDeadline<T>(p: Promise<T>, run: Run, deadline: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => { timer = setTimeout(() => r("timeout"), Math.max(0, deadline - performance.now())); });
    try {
      const v = await Promise.race([p, run.exit.then(() => "exit" as const), timeout]);
      if (v === "timeout") throw this.failure(`weir did not print ${what} before the deadline`);
      if (v === "exit") {
        await Promise.all(run.pumps); // its last words are in the log tail
        throw this.failure(`weir exited before ${what}`);
      }
      return v as T;
    } finally {
      clearTimeout(timer);
    }
  }

  private async stopWith(signal: "SIGKILL" | "SIGTERM"): Promise<ExitRecord> {
    const run = this.run;
    assert(run !== null, `${signal} with no child running`);
    run.expectingExit = true;
    this.ready = false; // no generator picks this URL any more
    run.child.kill(signal);
    const deadline = performance.now() + (this.opts.stopTimeoutMs ?? stopTimeoutMsDefault);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((r) => { timer = setTimeout(() => r(null), Math.max(0, deadline - performance.now())); });
    const exit = await Promise.race([run.exit, timeout]);
    clearTimeout(timer);
    if (exit === null) {
      run.child.kill("SIGKILL");
      await run.exit;
      throw this.failure(`weir did not exit within ${this.opts.stopTimeoutMs ?? stopTimeoutMsDefault} ms of ${signal}`);
    }
    return exit;
  }

  private exited(run: Run): ExitRecord {
    const rec: ExitRecord = { pid: run.child.pid, code: run.child.exitCode, signal: run.child.signalCode === null ? null : String(run.child.signalCode), expected: run.expectingExit };
    this.exits.push(rec);
    this.keepLine(rec.pid, `--- exit pid ${rec.pid} code ${rec.code} signal ${rec.signal}${rec.expected ? "" : " (crash)"} ---`, () => {});
    if (this.run === run) {
      this.run = null;
      this.ready = false;
    }
    if (!rec.expected && this.closedError === null) this.onCrash?.(rec);
    return rec;
  }

  private assertRunning(run: Run, what: string): void {
    if (!this.isCurrent(run)) throw this.failure(`weir exited before ${what}`);
  }

  private isCurrent(run: Run): boolean {
    return this.run === run;
  }

  private keepLine(pid: number, line: string, listening: (url: string) => void): void {
    if (line.includes('"weir listening"')) {
      try {
        const j = JSON.parse(line) as { msg?: unknown; url?: unknown };
        if (j.msg === "weir listening" && typeof j.url === "string") listening(j.url);
      } catch {
        // not a JSON line: kept as text below
      }
    }
    this.log.push(`[${pid}] ${line.length > logLineCharsMax ? line.slice(0, logLineCharsMax) + "…" : line}`);
    if (this.log.length > logLinesMax) this.log.splice(0, this.log.length - logLinesMax);
  }

  private failure(message: string): WeirProcessError {
    return new WeirProcessError(`${message}\n--- weir log (last lines) ---\n${this.logTail()}`);
  }
}

const readyPollMs = 10;

/** Sums `name{labels} value` lines by name. @example parseMetrics("a 1\na{x=\"y\"} 2").get("a") // 3 */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) out.set(m[1], (out.get(m[1]) ?? 0) + v);
  }
  return out;
}

async function pumpLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const dec = new TextDecoder();
  let rest = "";
  try {
    for await (const chunk of stream) {
      rest += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
      if (rest.length > logLineCharsMax * 4) rest = rest.slice(-logLineCharsMax); // a runaway line without newline
    }
  } catch {
    // the child was killed mid-write: what was read is kept
  }
  if (rest.length > 0) onLine(rest);
}

/** The bun binary running this process, else the one on PATH; a clear hint if there is none. */
function bunBinary(): string {
  if (process.versions.bun && existsSync(process.execPath)) return process.execPath;
  const onPath = Bun.which("bun");
  if (onPath) return onPath;
  throw new WeirProcessError("bun not found: install Bun 1.4.5 (curl -fsSL https://bun.sh/install | bash -s bun-v1.4.5) and put it on PATH");
}

function checkRoot(root: string): string {
  if (!existsSync(join(root, "src", "main.ts"))) throw new WeirProcessError(`no src/main.ts under ${root}: run from a weir checkout`);
  if (!existsSync(join(root, "node_modules"))) throw new WeirProcessError(`no node_modules under ${root}: run \`bun install\` there first`);
  return root;
}
