/**
 * The supervisor against real worker threads (test/fixtures/supervised-counter.worker.ts).
 * Timeouts are small so faults are seen quickly; waits are on conditions,
 * never on fixed sleeps, and no assertion is on a duration.
 */
import { afterEach, expect, test } from "bun:test";
import { type ChildSpec, Supervisor, type SupervisorEvent, type SupervisorOptions } from "../src/runtime/supervisor.ts";
import { waitFor } from "./helpers/wait.ts";

const script = new URL("./fixtures/supervised-counter.worker.ts", import.meta.url);

/** What the test sees of one child: when each spawn happened, and each spawn's last count. */
interface Probe {
  spec: ChildSpec;
  spawnTimesMs: number[];
  counts: Map<number, number>;
}

function probe(id: string, extra: Record<string, unknown> = {}): Probe {
  const p: Probe = {
    spawnTimesMs: [],
    counts: new Map(),
    spec: {
      id,
      script,
      data: () => {
        p.spawnTimesMs.push(performance.now());
        return { spawn: p.spawnTimesMs.length, ...extra };
      },
      onMessage: (msg) => {
        const m = msg as { type: string; spawn: number; n: number };
        if (m.type === "count") p.counts.set(m.spawn, m.n);
      },
    },
  };
  return p;
}

const count = (p: Probe, spawn: number) => p.counts.get(spawn) ?? 0;

let sup: Supervisor | null = null;
let events: SupervisorEvent[] = [];
let logs: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];

function supervisor(opts: SupervisorOptions = {}): Supervisor {
  events = [];
  logs = [];
  sup = new Supervisor({
    // Long enough that a loaded machine never looks hung; the hang test sets its own.
    heartbeatTimeoutMs: 2000,
    checkIntervalMs: 25,
    backoffBaseMs: 10,
    backoffMaxMs: 80,
    restartsMax: 5,
    restartWindowMs: 60_000,
    log: (level, msg, fields) => logs.push({ level, msg, fields }),
    ...opts,
  });
  sup.onEvent((e) => events.push(e));
  return sup;
}

const stateOf = (s: Supervisor, id: string) => s.status().find((c) => c.id === id)?.state;
const eventsOf = (id: string, type: SupervisorEvent["type"]) => events.filter((e) => e.id === id && e.type === type);

afterEach(async () => {
  await sup?.stop(1000);
  sup = null;
});

test("supervisor - a worker that throws is restarted and the new one runs", async () => {
  const s = supervisor();
  const a = probe("a");
  s.start(a.spec);
  await waitFor(() => stateOf(s, "a") === "running" && count(a, 1) >= 3, 5000, "a running and counting");
  expect(s.post("a", { type: "fault", mode: "throw" })).toBe(true);
  await waitFor(() => count(a, 2) >= 3, 5000, "the restarted a counting");
  expect(s.restartsTotal("a")).toBe(1);
  expect(a.spawnTimesMs.length).toBe(2);
  expect(stateOf(s, "a")).toBe("running");
  expect(s.status()[0].lastError).toBe("error: fault injected in spawn 1");
  expect(eventsOf("a", "exited").map((e) => e.reason)).toEqual(["error: fault injected in spawn 1"]);
  expect(eventsOf("a", "started").length).toBe(2);
});

test("supervisor - recycle: a planned restart runs `between` after the old worker is gone, starts a new one at once, and is not counted as a failure; a failing `between` still leaves a worker", async () => {
  const s = supervisor();
  const a = probe("a");
  s.start(a.spec);
  await waitFor(() => count(a, 1) >= 3, 5000, "a counting");
  const order: string[] = [];
  await s.recycle("a", async () => {
    order.push(`between, spawns so far ${a.spawnTimesMs.length}, state ${stateOf(s, "a")}`);
  });
  await waitFor(() => count(a, 2) >= 3, 5000, "the new a counting");
  expect(order).toEqual(["between, spawns so far 1, state running"]); // the old one's state: not marked failed or restarting
  expect([s.restartsTotal("a"), eventsOf("a", "exited").map((e) => e.reason), eventsOf("a", "restarting").length]).toEqual([0, ["recycled"], 0]);
  const failed = await s.recycle("a", async () => {
    throw new Error("store down");
  }).catch((e: Error) => e.message);
  expect(failed).toBe("store down");
  await waitFor(() => count(a, 3) >= 3, 5000, "a third a counting");
  expect(stateOf(s, "a")).toBe("running");
});

test("supervisor - a worker that calls process.exit is restarted", async () => {
  const s = supervisor();
  const a = probe("a");
  s.start(a.spec);
  await waitFor(() => count(a, 1) >= 3, 5000, "a counting");
  s.post("a", { type: "fault", mode: "exit" });
  await waitFor(() => count(a, 2) >= 3, 5000, "the restarted a counting");
  expect(s.restartsTotal("a")).toBe(1);
  expect(eventsOf("a", "exited").map((e) => e.reason)).toEqual(["exited with code 3"]);
});

test("supervisor - a worker that hangs is detected, terminated and restarted", async () => {
  const s = supervisor({ heartbeatTimeoutMs: 300 });
  const a = probe("a");
  s.start(a.spec);
  await waitFor(() => count(a, 1) >= 3, 5000, "a counting");
  const hungThread = s.status()[0].threadId;
  s.post("a", { type: "fault", mode: "hang" });
  await waitFor(() => count(a, 2) >= 3, 5000, "the restarted a counting");
  expect(eventsOf("a", "hung").length).toBe(1);
  expect(eventsOf("a", "hung")[0].reason).toStartWith("hung: no heartbeat for ");
  expect(s.restartsTotal("a")).toBe(1);
  expect(s.status()[0].threadId).not.toBe(hungThread);
});

test("supervisor - while one child crash-loops another keeps running and is never restarted", async () => {
  const s = supervisor({ restartsMax: 3 });
  const b = probe("b");
  const a = probe("a", { startFault: "throw" });
  s.start(b.spec);
  await waitFor(() => count(b, 1) >= 3, 5000, "b counting");
  const bThread = s.status()[0].threadId;
  const bCountsAtRestarts: number[] = [];
  s.onEvent((e) => {
    if (e.id === "a" && e.type === "restarting") bCountsAtRestarts.push(count(b, 1));
  });
  s.start(a.spec);
  await waitFor(() => stateOf(s, "a") === "failed", 5000, "a failed");
  const bAtFail = count(b, 1);
  await waitFor(() => count(b, 1) >= bAtFail + 5, 5000, "b counting on after a failed");
  expect(s.restartsTotal("a")).toBe(3);
  expect(a.spawnTimesMs.length).toBe(4);
  expect(s.restartsTotal("b")).toBe(0);
  expect(b.spawnTimesMs.length).toBe(1);
  expect(stateOf(s, "b")).toBe("running");
  expect(s.status()[0].threadId).toBe(bThread);
  expect(eventsOf("b", "exited")).toEqual([]);
  expect(bCountsAtRestarts.length).toBe(3);
  expect(bAtFail).toBeGreaterThanOrEqual(bCountsAtRestarts[2]);
});

test("supervisor - after restartsMax restarts in the window the child is failed and never spawned again", async () => {
  const s = supervisor({ restartsMax: 2 });
  const a = probe("a", { startFault: "throw" });
  const witness = probe("witness");
  s.start(witness.spec);
  s.start(a.spec);
  await waitFor(() => eventsOf("a", "failed").length > 0, 5000, "a failed event");
  expect(stateOf(s, "a")).toBe("failed");
  expect(s.restartsTotal("a")).toBe(2);
  expect(a.spawnTimesMs.length).toBe(3);
  expect(s.status().find((c) => c.id === "a")?.lastError).toBe("error: fault injected in spawn 3");
  expect(s.post("a", { type: "fault", mode: "exit" })).toBe(false);
  // Let the witness run on for a while: a failed child must stay down.
  const seen = count(witness, 1);
  await waitFor(() => count(witness, 1) >= seen + 20, 5000, "witness running on");
  expect(a.spawnTimesMs.length).toBe(3);
  expect(eventsOf("a", "failed").length).toBe(1);
  expect(stateOf(s, "a")).toBe("failed");
  expect(logs.some((l) => l.level === "error" && l.fields.id === "a")).toBe(true);
});

test("supervisor - back-off doubles up to its cap and the gaps before respawns grow", async () => {
  const s = supervisor({ restartsMax: 4, backoffBaseMs: 50, backoffMaxMs: 300 });
  const a = probe("a", { startFault: "throw" });
  // The gap runs from a worker's exit to the next spawn: the back-off alone,
  // without the time a worker takes to load and crash.
  const exitTimesMs: number[] = [];
  s.onEvent((e) => {
    if (e.type === "exited") exitTimesMs.push(performance.now());
  });
  s.start(a.spec);
  await waitFor(() => stateOf(s, "a") === "failed", 5000, "a failed");
  expect(eventsOf("a", "restarting").map((e) => e.delayMs)).toEqual([50, 100, 200, 300]);
  expect(a.spawnTimesMs.length).toBe(5);
  const gaps = a.spawnTimesMs.slice(1).map((ms, i) => ms - exitTimesMs[i]);
  for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThan(gaps[i - 1]);
});

test("supervisor - restarts older than the window leave the budget (injected clock)", async () => {
  let clockMs = 1_000_000;
  const s = supervisor({ restartsMax: 1, restartWindowMs: 1000, backoffBaseMs: 10, now: () => clockMs });
  const a = probe("a");
  s.start(a.spec);
  await waitFor(() => count(a, 1) >= 2, 5000, "spawn 1 counting");
  s.post("a", { type: "fault", mode: "exit" });
  await waitFor(() => count(a, 2) >= 2, 5000, "spawn 2 counting");
  clockMs += 1001; // the first restart leaves the window
  s.post("a", { type: "fault", mode: "exit" });
  await waitFor(() => count(a, 3) >= 2, 5000, "spawn 3 counting");
  s.post("a", { type: "fault", mode: "exit" }); // second restart inside one window: over budget
  await waitFor(() => stateOf(s, "a") === "failed", 5000, "a failed");
  expect(eventsOf("a", "restarting").map((e) => e.delayMs)).toEqual([10, 10]);
  expect(s.restartsTotal("a")).toBe(2);
  expect(a.spawnTimesMs.length).toBe(3);
});

test("supervisor - stop() ends every worker, even one that ignores the stop message", async () => {
  const s = supervisor();
  const alive = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const ids = ["a", "b", "deaf"];
  ids.forEach((id, i) => s.start(probe(id, { aliveSab: alive.buffer, aliveSlot: i, ignoreStop: id === "deaf" }).spec));
  await waitFor(() => ids.every((_, i) => Atomics.load(alive, i) >= 3), 5000, "all children beating");
  await s.stop(300);
  expect(s.status().map((c) => [c.id, c.state, c.threadId])).toEqual(ids.map((id) => [id, "stopped", undefined]));
  expect(logs.find((l) => l.msg === "children did not stop in time, terminating")?.fields.ids).toEqual(["deaf"]);
  expect(events.filter((e) => e.type === "exited").map((e) => [e.id, e.reason])).toEqual(
    expect.arrayContaining(ids.map((id) => [id, "stopped"])),
  );
  // No thread may bump its slot any more: each wait must time out unchanged.
  for (let i = 0; i < ids.length; i++) {
    const seen = Atomics.load(alive, i);
    const w = Atomics.waitAsync(alive, i, seen, 150);
    expect(w.async ? await w.value : w.value).toBe("timed-out");
  }
  expect(s.restartsTotal()).toBe(0);
});

test("supervisor - a worker script that cannot load ends failed after its restarts", async () => {
  const s = supervisor({ restartsMax: 1 });
  s.start({ id: "missing", script: new URL("./fixtures/supervised-missing.worker.ts", import.meta.url), data: () => ({}) });
  await waitFor(() => stateOf(s, "missing") === "failed", 5000, "missing failed");
  expect(s.restartsTotal("missing")).toBe(1);
  expect(eventsOf("missing", "started")).toEqual([]);
  expect(s.status()[0].lastError).toStartWith("error: Cannot find module");
});
