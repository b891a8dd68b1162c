#!/usr/bin/env node
// Launcher of the sessionbus CLI: runs the compiled CLI in dist/. When dist/ is missing or
// older than src/ (a fresh clone before `npm run setup`, or after a change), it compiles
// first, once; when that fails (say, a type error in work in progress), it runs the
// TypeScript sources through tsx instead, which costs a second or more per command.
import { build, isBuildCurrent } from "../scripts/build.mjs";

let compiled = isBuildCurrent();
if (!compiled) {
  process.stderr.write(
    "sessionbus: compiling src/ into dist/ first (once after a change; `npm run build` does it ahead)\n",
  );
  const result = build({ ifStale: true, output: "capture" });
  compiled = result.ok;
  if (!compiled) {
    process.stderr.write(
      `${result.messages.trimEnd()}\nsessionbus: could not compile src/ (see above); running it through tsx\n`,
    );
  }
}
if (compiled) {
  await import("../dist/src/cli/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
