/**
 * The partition worker's script, as a URL computed beside it.
 *
 * Why a module of its own: a URL relative to the spawner (engine/) needs a
 * "../partition/" that leads out of the one-file executable's /$bunfs/root,
 * where every worker entry lies flat beside the main bundle
 * (scripts/build-exe.ts). Computed here, "./worker.ts" names the file
 * beside this one when run from source, and the bundled worker.js when
 * compiled (import.meta.url is then the bundle's, Bun maps .ts to .js).
 *
 * @example
 *   supervisor.start({ id: "partition-0", script: partitionWorkerUrl, data });
 */
export const partitionWorkerUrl = new URL("./worker.ts", import.meta.url);
