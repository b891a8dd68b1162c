import { chmod, mkdir } from "node:fs/promises";

/** Owner-only: the store and the embedded server's credentials live below it. */
const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` (and missing parents) readable by its owner only, and tightens it to 0700
 * when it already exists (a store made by an earlier version was 0755). What lies inside an
 * existing directory keeps its mode: nobody else can reach it through this one any more.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE);
}
