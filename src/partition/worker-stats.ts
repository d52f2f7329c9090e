/**
 * What each BigInt64 slot of a partition's shared stats buffer holds. The
 * worker writes the counts, the engine reads them; the engine writes
 * `owner`: the incarnation (epoch) allowed to consume the partition's input
 * ring, so a superseded worker that has not yet stopped never takes a
 * message from its replacement. `viewsRefused` is the partition's
 * ViewSet.refused as of its last batch (it is in the checkpoint, so it
 * survives a restart).
 */
export const partitionStatSlots = { events: 0, replayed: 1, checkpoints: 2, owner: 3, viewsRefused: 4, count: 5 } as const;
