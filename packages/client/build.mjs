#!/usr/bin/env node
/**
 * Builds the package: compiles src/client/ and the generated gen/ts/sessionbus/ of the
 * repository into dist/ (JavaScript and declarations; the paths below dist/ are the
 * repository's, so the relative imports between the two stay as written). Then checks that
 * nothing else came in: the client must not import the broker, the server or the store.
 * `npm pack` runs it (prepack).
 */
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const dist = join(here, "dist");
/** Everything the package may contain under dist/. */
const ALLOWED = ["src/client/", "gen/ts/sessionbus/"];

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-p", join(here, "tsconfig.json")], {
  stdio: "inherit",
});
if (result.status !== 0) {
  console.error("packages/client: tsc failed");
  process.exit(1);
}

const files = readdirSync(dist, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => relative(dist, join(entry.parentPath, entry.name)).replaceAll("\\", "/"));
const strays = files.filter((file) => !ALLOWED.some((prefix) => file.startsWith(prefix)));
if (strays.length > 0) {
  console.error(
    `packages/client: the client imports code outside ${ALLOWED.join(" and ")}:\n  ${strays.join("\n  ")}`,
  );
  process.exit(1);
}
console.log(`packages/client: ${files.length} files in dist/`);
