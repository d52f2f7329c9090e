/**
 * A real `nats-server -js` for tests and benches: on a port the server picks
 * (`-p -1`, read back from its ports file, so no other process can take the
 * port between our choice and its bind), with a fresh JetStream store
 * directory, waited on until it accepts connections. `kill()` is a SIGKILL
 * for outage tests; `restart()` starts it again on the same port and store,
 * so clients reconnect to the same URL and find their streams. Every wait
 * has a deadline; a failure names the server's last log lines.
 *
 * @example
 *   const nats = await startNatsServer();
 *   const nc = await connect({ servers: nats.url });
 *   await nats.kill();      // clients see a disconnect
 *   await nats.restart();   // same URL, same streams
 *   await nats.stop();      // SIGTERM (then SIGKILL) and the store removed
 */
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServerOptions {
  /** Give up waiting for the server to accept connections after this long. */
  startTimeoutMs?: number;
  /** SIGTERM, then SIGKILL after this long. */
  stopTimeoutMs?: number;
}

const startTimeoutMsDefault = 10_000;
const stopTimeoutMsDefault = 5_000;
const pollMs = 10;
const logTailCharsMax = 2_000; // of the server's log, in a failure's message
const searchPath = `${process.env.PATH ?? ""}:/usr/sbin:/usr/local/sbin:/usr/local/bin`; // Debian puts nats-server in /usr/sbin

/**
 * The nats-server binary on PATH (or in /usr/sbin), or an Error that says how to install it.
 * @example Bun.spawn([natsServerBinary(), "--version"]);
 */
export function natsServerBinary(): string {
  const bin = Bun.which("nats-server", { PATH: searchPath });
  if (bin === null) {
    throw new Error("nats-server not found on PATH or in /usr/sbin: install it with `apt-get install -y nats-server` (Debian's 2.9.x is what weir ships against)");
  }
  return bin;
}

/** Starts a nats-server with JetStream on 127.0.0.1 and waits until it accepts connections. */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const server = new NatsServer(natsServerBinary(), mkdtempSync(join(tmpdir(), "weir-nats-")), opts);
  try {
    await server.restart();
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

export class NatsServer {
  #child: Subprocess<"ignore", "ignore", "ignore"> | null = null;
  #port = -1; // -1 until the first start: the server picks one

  constructor(readonly binary: string, readonly storeDir: string, private readonly opts: NatsServerOptions) {}

  get port(): number { return this.#port; }
  get url(): string { return `nats://127.0.0.1:${this.#port}`; }
  /** The running server's PID, or -1 while it is down. */
  get pid(): number { return this.#child?.pid ?? -1; }
  get running(): boolean { return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null; }

  /** Stops the server if it runs (SIGTERM), starts it on the same port and store dir, waits until it accepts. */
  async restart(): Promise<void> {
    if (this.#child !== null) await this.#end("SIGTERM");
    const child = Bun.spawn([
      this.binary, "-a", "127.0.0.1", "-p", String(this.#port), "-js", "-sd", this.storeDir,
      "--ports_file_dir", this.storeDir, "-l", this.#logFile,
    ], { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
    this.#child = child;
    const deadline = performance.now() + (this.opts.startTimeoutMs ?? startTimeoutMsDefault);
    if (this.#port === -1) this.#port = await this.#portFromFile(child, deadline);
    await this.#waitAccepting(child, deadline);
  }

  /** SIGKILL, as a crash or a pulled cable looks to clients; the store stays for restart(). */
  async kill(): Promise<void> {
    if (this.#child !== null) await this.#end("SIGKILL");
  }

  /** Stops the server (SIGTERM, SIGKILL after the timeout) and removes its store dir. */
  async stop(): Promise<void> {
    if (this.#child !== null) await this.#end("SIGTERM");
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  get #logFile(): string { return join(this.storeDir, "nats-server.log"); }

  async #end(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const child = this.#child!;
    this.#child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(child.pid, signal);
    const timeoutMs = this.opts.stopTimeoutMs ?? stopTimeoutMsDefault;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    await child.exited;
    clearTimeout(timer);
  }

  /** The port a `-p -1` server bound, from the ports file it writes once listening. */
  async #portFromFile(child: Subprocess, deadline: number): Promise<number> {
    const file = join(this.storeDir, `nats-server_${child.pid}.ports`); // <executable name>_<pid>.ports
    for (;;) {
      // The file may exist before its JSON is complete: read it until a port shows.
      const m = existsSync(file) ? /"nats":\["[^"]*:(\d+)"/.exec(readFileSync(file, "utf8")) : null;
      if (m !== null) return Number(m[1]);
      await this.#pollTurn(child, deadline, "its ports file");
    }
  }

  async #waitAccepting(child: Subprocess, deadline: number): Promise<void> {
    for (;;) {
      if (await accepts(this.#port)) return;
      await this.#pollTurn(child, deadline, `a connection on 127.0.0.1:${this.#port}`);
    }
  }

  async #pollTurn(child: Subprocess, deadline: number, what: string): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nats-server exited (${child.exitCode ?? child.signalCode}) before ${what}; log tail:\n${this.#logTail()}`);
    }
    if (performance.now() >= deadline) {
      await this.#end("SIGKILL");
      throw new Error(`nats-server: timed out waiting for ${what}; log tail:\n${this.#logTail()}`);
    }
    await Bun.sleep(pollMs);
  }

  #logTail(): string {
    try {
      return readFileSync(this.#logFile, "utf8").slice(-logTailCharsMax);
    } catch {
      return "(no log)";
    }
  }
}

/** Whether a TCP connection to 127.0.0.1:port is accepted now. */
async function accepts(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}
