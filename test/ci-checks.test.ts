import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const projectRoot = fileURLToPath(new URL("..", import.meta.url));
const COPIED = ["proto", "buf.yaml", "buf.gen.yaml", "gen", "scripts/check-gen.sh"];
const MESSAGE_PROTO = "proto/sessionbus/v1/message.proto";
const SLOW = 180_000;

let repo: string;

// GIT_DIR and friends (set when running inside a git hook) would point git at the wrong repo.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith("GIT_")),
);

function run(command: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd: repo, env, encoding: "utf8", timeout: SLOW });
}

/** Runs a command that must succeed; its output is in the error when it does not. */
function must(command: string, args: string[]): void {
  const result = run(command, args);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${result.stdout}${result.stderr}`);
  }
}

function git(...args: string[]): void {
  must("git", ["-c", "user.name=ci-test", "-c", "user.email=ci@test", ...args]);
}

function checkGen(): { status: number | null; output: string } {
  const result = run("bash", ["scripts/check-gen.sh"]);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function editProto(path: string, edit: (source: string) => string): void {
  const file = join(repo, path);
  const before = readFileSync(file, "utf8");
  const after = edit(before);
  expect(after).not.toBe(before);
  writeFileSync(file, after);
}

/** A fresh committed copy of what check-gen.sh needs, so each case starts from a clean tree. */
beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), "sessionbus-ci-checks-"));
  for (const path of COPIED) cpSync(join(projectRoot, path), join(repo, path), { recursive: true });
  symlinkSync(join(projectRoot, "node_modules"), join(repo, "node_modules"));
  writeFileSync(join(repo, ".gitignore"), "node_modules\n");
  must("git", ["init", "--quiet"]);
  git("add", "--all");
  git("commit", "--quiet", "--no-gpg-sign", "-m", "fixture");
}, SLOW);

afterEach(() => {
  rmSync(repo, { recursive: true, force: true });
});

describe("scripts/check-gen.sh", () => {
  it(
    "passes on the committed tree",
    () => {
      const result = checkGen();
      expect(result.output).toContain("check-gen: ok");
      expect(result.status).toBe(0);
    },
    SLOW,
  );

  it(
    "fails when gen/ is stale after a .proto change",
    () => {
      editProto(MESSAGE_PROTO, (source) =>
        source.replace("message Message {", "message Message {\n  string ci_drift_probe = 99;"),
      );
      const result = checkGen();
      expect(result.status).not.toBe(0);
      expect(result.output).toContain("npm run generate");
      expect(result.output).toContain("message_pb.ts");
    },
    SLOW,
  );

  it(
    "fails and lists the new file when a new .proto has no committed gen/ output",
    () => {
      writeFileSync(
        join(repo, "proto/sessionbus/v1/ci_probe.proto"),
        'syntax = "proto3";\n\npackage sessionbus.v1;\n\nmessage CiProbe {\n  string id = 1;\n}\n',
      );
      const result = checkGen();
      expect(result.status).not.toBe(0);
      expect(result.output).toContain("npm run generate");
      expect(result.output).toContain("gen/ts/sessionbus/v1/ci_probe_pb.ts");
    },
    SLOW,
  );

  it(
    "fails on a buf lint finding even when gen/ is up to date",
    () => {
      editProto(MESSAGE_PROTO, (source) => `${source}\nmessage bad_name {}\n`);
      // Regenerate and commit, so that only the lint finding is left to fail on.
      must("npx", ["buf", "generate"]);
      git("add", "--all");
      git("commit", "--quiet", "--no-gpg-sign", "-m", "lint violation");

      const result = checkGen();
      expect(result.status).not.toBe(0);
      expect(result.output).toContain("bad_name");
      expect(result.output).not.toContain("npm run generate");
    },
    SLOW,
  );
});
