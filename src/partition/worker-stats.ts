/**
 * What each BigInt64 slot of a partition's shared stats buffer holds. The
 * worker writes the counts, the engine reads them; the engine writes
 * `owner`: the incarnation (epoch) allowed to consume the partition's input
 * ring, so a superseded worker that has not yet stopped never takes a
 * message from its replacement.
 */
export const partitionStatSlots = { events: 0, replayed: 1, checkpoints: 2, owner: 3, count: 4 } as const;
