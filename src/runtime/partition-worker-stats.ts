/** What each BigInt64 slot of a partition's shared stats buffer counts (the worker writes, the engine reads). */
export const partitionStatSlots = { events: 0, replayed: 1, checkpoints: 2, count: 3 } as const;
