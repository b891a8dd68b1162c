import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import semver from "semver";
import { describe, expect, it } from "vitest";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));

interface LockedPackage {
  version?: string;
  engines?: { node?: string };
  optional?: boolean;
  os?: string[];
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(join(projectRoot, file), "utf8")) as T;
}

/**
 * Packages whose `engines.node` leaves out Node 20 although they run on it. Each is named in
 * docs/development.md ("Node versions") with why it is safe; the suite runs on Node 20 to prove it.
 */
const ENGINE_EXCEPTIONS: Record<string, string> = {
  // Declares Node >= 22 but only uses globalThis.crypto.getRandomValues and BigInt.
  "@nats-io/nuid": "3.0.0",
};

describe("dependencies", () => {
  it("installs with `npm ci`: package-lock.json is in sync with package.json", () => {
    const dir = mkdtempSync(join(tmpdir(), "sessionbus-lockfile-"));
    try {
      for (const file of ["package.json", "package-lock.json"]) {
        copyFileSync(join(projectRoot, file), join(dir, file));
      }
      const result = spawnSync(
        "npm",
        ["ci", "--dry-run", "--ignore-scripts", "--no-audit", "--no-fund"],
        { cwd: dir, encoding: "utf8", timeout: 120_000 },
      );
      expect(result.status, `${result.stdout}${result.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it("supports the Node version package.json promises, in every locked package", () => {
    const promised = readJson<{ engines: { node: string } }>("package.json").engines.node;
    const oldest = semver.minVersion(promised);
    expect(oldest, `engines.node ${promised}`).not.toBeNull();
    const lock = readJson<{ packages: Record<string, LockedPackage> }>("package-lock.json");
    const refusing: string[] = [];
    for (const [where, pkg] of Object.entries(lock.packages)) {
      const range = pkg.engines?.node;
      // Platform binaries of other systems (optional, with `os`) are never installed here.
      if (!range || where === "" || (pkg.optional && pkg.os)) continue;
      const name = where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length);
      if (semver.satisfies(oldest as semver.SemVer, range)) continue;
      if (ENGINE_EXCEPTIONS[name] === pkg.version) continue;
      refusing.push(`${name}@${pkg.version} wants node ${range}`);
    }
    expect(refusing).toEqual([]);
  });

  it("names each engine exception in docs/development.md", () => {
    const page = readFileSync(join(projectRoot, "docs/development.md"), "utf8");
    for (const [name, version] of Object.entries(ENGINE_EXCEPTIONS)) {
      expect(page).toContain(`${name} ${version}`);
    }
  });
});
