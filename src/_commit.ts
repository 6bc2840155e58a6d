// The git commit this program was built from. scripts/compile.ts rewrites
// this file while `deno compile` runs and restores it afterwards; in a
// checkout it stays undefined, so `deno run` says "commit unknown".
export const COMMIT: string | undefined = undefined;
