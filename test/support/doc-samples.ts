/**
 * The marked code blocks of the project's Markdown files, which tests run as a reader would:
 * a fenced block right after `<!-- sample: NAME -->`, `<!-- sample-output: NAME -->` or
 * `<!-- command: NAME -->`. test/doc-samples.test.ts checks that every marked block is read
 * by some test.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url));

/**
 * A marker on a line of its own, of a kind a test reads a block by; loosely, so that a
 * misspelt `<!--sample:x-->` is found too (and then matches no known name).
 */
const MARKER = /^[ \t]*<!--\s*((?:sample|sample-output|command)\s*:[^>]*?)\s*-->/gm;

/** A Markdown file of the project, by its path from the project's root. */
export function readDoc(file: string): string {
  return readFileSync(join(projectRoot, file), "utf8");
}

/**
 * The body of the fenced block that directly follows `<!-- marker -->` in `file` (a path from
 * the project's root), e.g. `docBlock("docs/api.md", "sample: grpcurl")`.
 */
export function docBlock(file: string, marker: string): string {
  const pattern = new RegExp(`^<!-- ${marker} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)^\`\`\`$`, "m");
  const found = pattern.exec(readDoc(file));
  if (found?.[1] === undefined) {
    throw new Error(`${file} has no fenced block right after "<!-- ${marker} -->"`);
  }
  return found[1];
}

/** Every marker in `file`, in order, e.g. `["sample: sdk", "sample-output: sdk"]`. */
export function docMarkers(file: string): string[] {
  return [...readDoc(file).matchAll(MARKER)].map((match) => match[1] as string);
}
