/**
 * Every environment variable the broker reads is named where users look for it: in
 * `sessionbus serve --help` and in docs/configuration.md. The names come from src/config.ts
 * (where the environment is read), so a new setting cannot be left out of either.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { COMMAND_HELP } from "../src/cli/help.js";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const read = (path: string) => readFileSync(join(projectRoot, path), "utf8");

/** Names read as `env.NAME` or given as `"NAME"` strings in src/config.ts. */
function variablesReadByTheBroker(): string[] {
  const source = read("src/config.ts");
  const names = new Set<string>();
  for (const match of source.matchAll(/env\.([A-Z][A-Z0-9_]+)/g)) names.add(match[1] as string);
  for (const match of source.matchAll(/"((?:SESSIONBUS|NATS)_[A-Z0-9_]+)"/g)) {
    names.add(match[1] as string);
  }
  return [...names].sort();
}

describe("configuration names", () => {
  const names = variablesReadByTheBroker();

  it("finds the variables the broker reads", () => {
    expect(names).toContain("SESSIONBUS_PORT");
    expect(names).toContain("NATS_CREDS");
    expect(names.length).toBeGreaterThan(20);
  });

  it("names each of them in `sessionbus serve --help`", () => {
    expect(names.filter((name) => !COMMAND_HELP.serve?.includes(name))).toEqual([]);
  });

  it("documents each of them in docs/configuration.md", () => {
    const docs = read("docs/configuration.md");
    expect(names.filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
  });
});
