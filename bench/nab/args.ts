/**
 * The command line both NAB runners share (replay.ts, offline.ts): a NAB
 * checkout's path, `--split dev|heldout|all` (dev by default: tune there
 * only) and `--spacing-ms N` (1,000 by default: row i at t0 + i · N), plus
 * options of their own; and the split's files and cost profiles.
 *
 * @example
 *   const args = parseNabArgs(process.argv.slice(2), usage);
 *   if (typeof args === "string") { console.error(args); process.exit(2); }
 *   const { files, profiles } = await loadSplit(args);
 */
import { inSplit, type NabFile, readCorpus, readProfiles, type Split } from "./corpus.ts";
import type { CostProfile, ProfileName } from "./scorer.ts";

export interface NabArgs { nabDir: string; split: Split; spacingMs: number }

/**
 * Parses the shared arguments; `own(flag, value)` takes a runner's own `--flag value` (true when it did).
 * Answers the arguments, or the usage with what was not understood.
 */
export function parseNabArgs(argv: string[], usage: string, own: (flag: string, value: string | undefined) => boolean = () => false): NabArgs | string {
  const args: NabArgs = { nabDir: "", split: "dev", spacingMs: 1000 };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === "--split" && ["dev", "heldout", "all"].includes(argv[k + 1])) args.split = argv[++k] as Split;
    else if (a === "--spacing-ms" && Number.isSafeInteger(Number(argv[k + 1])) && Number(argv[k + 1]) >= 1) args.spacingMs = Number(argv[++k]);
    else if (a.startsWith("--") && own(a, argv[k + 1])) k++;
    else if (!a.startsWith("--") && args.nabDir === "") args.nabDir = a;
    else return `${usage}\n(did not understand "${a}")`;
  }
  return args.nabDir === "" ? usage : args;
}

/** The split's files (sorted by name) and NAB's cost profiles, read from the checkout. */
export async function loadSplit(args: NabArgs): Promise<{ files: NabFile[]; profiles: Record<ProfileName, CostProfile> }> {
  const files = (await readCorpus(args.nabDir)).files.filter((f) => inSplit(f.category, args.split));
  return { files, profiles: await readProfiles(args.nabDir) };
}

/** The splits a run prints: all three after a whole-corpus run, else the one replayed. */
export function splitsOf(split: Split): Split[] {
  return split === "all" ? ["dev", "heldout", "all"] : [split];
}
