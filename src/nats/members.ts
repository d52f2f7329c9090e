/**
 * Which weir processes share the partitions, and which partitions each
 * should own. Members announce themselves in JetStream KV (bucket
 * `weir_members`, key `m.<name>`, value { name, expiresMs }), renewing like
 * a lease; the live ones are those not expired. Each partition goes to the
 * member with the highest hash of (member, partition) (rendezvous
 * hashing): every process computes the same answer from the same member
 * list with no coordinator, shares come out even, and a member joining or
 * leaving moves only the partitions it gains or held.
 *
 * @example
 *   assignPartitions(4, ["weir-a", "weir-b"]) // Map { "weir-a" => [1, 2], "weir-b" => [0, 3] } (for instance)
 */
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { limits } from "../runtime/limits.ts";

/** FNV-1a over the member's name and the partition, then a final mix (so similar names spread). */
function score(member: string, partition: number): number {
  let h = 0x811c9dc5;
  const s = `${member}\u0000${partition}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** Each member's partitions (ascending); ties go to the smaller name. Members with none are listed with []. */
export function assignPartitions(partitions: number, members: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>([...members].sort().map((m) => [m, []]));
  if (members.length === 0) return out;
  for (let p = 0; p < partitions; p++) {
    let best = "";
    let bestScore = -1;
    for (const m of out.keys()) {
      const s = score(m, p);
      if (s > bestScore) {
        best = m;
        bestScore = s;
      }
    }
    out.get(best)!.push(p);
  }
  return out;
}

const bucket = "weir_members";
const encoder = new TextEncoder();

export class Members {
  private constructor(private readonly kv: KV, readonly name: string, private readonly ttlMs: number, private readonly now: () => number) {}

  static async open(nc: NatsConnection, o: { name: string; ttlMs?: number; now?: () => number }): Promise<Members> {
    if (!/^[A-Za-z0-9_-]+$/.test(o.name)) throw new Error(`member name "${o.name}" must be letters, digits, _ or -`); // programmer error: weir names itself
    const kv = await new Kvm(nc).create(bucket, { history: 1 });
    return new Members(kv, o.name, o.ttlMs ?? limits.natsLeaseMs, o.now ?? Date.now);
  }

  /** Announces (or renews) this member until now + ttl. */
  async heartbeat(): Promise<void> {
    await this.kv.put(`m.${this.name}`, encoder.encode(JSON.stringify({ name: this.name, expiresMs: this.now() + this.ttlMs })));
  }

  /** Leaves at once (a graceful stop), so the others take its partitions without waiting for expiry. */
  async leave(): Promise<void> {
    await this.kv.delete(`m.${this.name}`);
  }

  /** The live members' names, sorted. */
  async live(): Promise<string[]> {
    const names: string[] = [];
    const keys = await this.kv.keys("m.*");
    for await (const k of keys) {
      const e = await this.kv.get(k);
      if (e === null || e.operation !== "PUT" || e.value.length === 0) continue;
      const m = JSON.parse(new TextDecoder().decode(e.value)) as { name: string; expiresMs: number };
      if (m.expiresMs > this.now()) names.push(m.name);
    }
    return names.sort();
  }
}
