/**
 * Partition leases and fenced commits in JetStream KV, against a real
 * nats-server: one owner at a time, takeover only after expiry with a
 * higher epoch, a lost compare-and-set is a lost race (never two owners),
 * and a stale owner's commit is refused once the new owner has fenced.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { leaseStep, Leases, StaleOwnerError } from "../src/nats/leases.ts";
import { assignPartitions, Members } from "../src/nats/members.ts";
import { startNatsServer, type NatsServer } from "./helpers/nats-server.ts";

describe("nats - leases", () => {
  test("nats - lease steps: create when none, renew our live one, take a free or expired one with the next epoch, else wait", () => {
    expect(leaseStep("a", null, 100)).toEqual({ kind: "create" });
    expect(leaseStep("a", { owner: "a", epoch: 3, expiresMs: 200 }, 100)).toEqual({ kind: "renew" });
    expect(leaseStep("a", { owner: "a", epoch: 3, expiresMs: 100 }, 100)).toEqual({ kind: "take", epoch: 4 }); // our own, expired: a new epoch
    expect(leaseStep("a", { owner: "b", epoch: 3, expiresMs: 200 }, 100)).toEqual({ kind: "wait", owner: "b", untilMs: 200 });
    expect(leaseStep("a", { owner: "b", epoch: 3, expiresMs: 99 }, 100)).toEqual({ kind: "take", epoch: 4 });
    expect(leaseStep("a", { owner: "", epoch: 3, expiresMs: 0 }, 100)).toEqual({ kind: "take", epoch: 4 }); // released
  });

  let nats: NatsServer;
  let nc: NatsConnection;
  let clock = 1_000_000;
  const now = () => clock;
  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  test("nats - one owner at a time; a dead owner's lease is taken after expiry with a higher epoch; the old owner's renewal fails", async () => {
    const a = await Leases.open(nc, { owner: "a", leaseMs: 1_000, now });
    const b = await Leases.open(nc, { owner: "b", leaseMs: 1_000, now });
    const heldA = (await a.claim(0))!;
    expect([heldA.epoch, await b.claim(0)]).toEqual([1, null]);
    clock += 500;
    const renewed = (await a.renew(heldA))!;
    expect(renewed.expiresMs).toBe(clock + 1_000);
    clock += 999;
    expect(await b.claim(0)).toBeNull(); // renewed: still a's
    clock += 2;
    const heldB = (await b.claim(0))!; // a stopped renewing: expired
    expect([heldB.epoch, (await b.holder(0))?.owner]).toEqual([2, "b"]);
    expect(await a.renew(renewed)).toBeNull(); // a learns it lost the lease
  });

  test("nats - a stale owner's commit is refused once the new owner has fenced; the new owner continues from the last committed position", async () => {
    const a = await Leases.open(nc, { owner: "a", leaseMs: 1_000, now });
    const b = await Leases.open(nc, { owner: "b", leaseMs: 1_000, now });
    const heldA = (await a.claim(1))!;
    expect(await a.fence(heldA)).toEqual({ pos: -1 });
    expect(await a.commitFenced(heldA, { pos: 4096 })).toEqual({ pos: 4096 });
    clock += 5_000; // a paused (GC, a partition of the network): its lease expires
    const heldB = (await b.claim(1))!;
    expect(await b.fence(heldB)).toEqual({ pos: 4096 });
    const stale = await a.commitFenced(heldA, { pos: 8192 }).catch((e) => e);
    expect(stale).toBeInstanceOf(StaleOwnerError);
    expect((stale as Error).message).toBe("partition 1: epoch 1 of a is stale; epoch 2 owns it");
    expect(await b.commitFenced(heldB, { pos: 5000 })).toEqual({ pos: 5000 });
  });

  test("nats - a released lease is free at once; two processes racing for a free lease: exactly one wins", async () => {
    const a = await Leases.open(nc, { owner: "a", leaseMs: 1_000, now });
    const b = await Leases.open(nc, { owner: "b", leaseMs: 1_000, now });
    const heldA = (await a.claim(2))!;
    expect(await a.release(heldA)).toBe(true);
    expect((await b.claim(2))?.epoch).toBe(2);
    for (let p = 10; p < 30; p++) {
      const [x, y] = await Promise.all([a.claim(p), b.claim(p)]);
      expect([p, [x, y].filter((h) => h !== null).length]).toEqual([p, 1]);
    }
  });
});

describe("nats - members and shares", () => {
  test("nats - rendezvous shares: every partition to exactly one member, even shares, and a joiner moves only what it gains", () => {
    const partitions = 64;
    const three = assignPartitions(partitions, ["weir-a", "weir-b", "weir-c"]);
    const all = [...three.values()].flat().sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: partitions }, (_, p) => p));
    for (const share of three.values()) expect(share.length).toBeGreaterThanOrEqual(14); // 64 / 3 ≈ 21; rendezvous hashing is even, not exact
    const four = assignPartitions(partitions, ["weir-a", "weir-b", "weir-c", "weir-d"]);
    const ownerOf = (m: Map<string, number[]>) => new Map([...m].flatMap(([name, ps]) => ps.map((p) => [p, name] as const)));
    const before = ownerOf(three);
    const after = ownerOf(four);
    const moved = [...after].filter(([p, owner]) => before.get(p) !== owner);
    expect(moved.every(([, owner]) => owner === "weir-d")).toBe(true); // only to the joiner
    expect(moved.length).toBe(four.get("weir-d")!.length);
    expect(assignPartitions(4, [])).toEqual(new Map());
    expect(assignPartitions(3, ["b", "a"])).toEqual(assignPartitions(3, ["a", "b"])); // order-free
  });

  test("nats - members announce themselves, expire when they stop, and leave at once", async () => {
    const nats = await startNatsServer();
    const nc = await connect({ servers: nats.url });
    try {
      let t = 5_000_000;
      const now = () => t;
      const a = await Members.open(nc, { name: "weir-a", ttlMs: 1_000, now });
      const b = await Members.open(nc, { name: "weir-b", ttlMs: 1_000, now });
      await a.heartbeat();
      await b.heartbeat();
      expect(await a.live()).toEqual(["weir-a", "weir-b"]);
      t += 600;
      await a.heartbeat(); // b stops beating
      t += 600;
      expect(await a.live()).toEqual(["weir-a"]);
      await a.leave();
      expect(await b.live()).toEqual([]);
    } finally {
      await nc.close();
      await nats.stop();
    }
  });
});
