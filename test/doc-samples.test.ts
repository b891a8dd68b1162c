/**
 * Every marked code block of the documentation is run by a test: a block marked
 * `<!-- sample: NAME -->` (or `sample-output:`, `command:`) in README.md, docs/ or a client
 * package's README must be listed here with the test file that reads it, and that file must
 * name both the document and the marker. A new marked block without a test fails here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { docBlock, docMarkers, projectRoot } from "./support/doc-samples.js";

/** Document -> marker -> the test file that runs (or compares against) that block. */
const TESTED: Record<string, Record<string, string>> = {
  "README.md": {
    "command: start": "test/readme.test.ts",
    "command: first-use": "test/readme.test.ts",
    "command: test": "test/readme.test.ts",
    "sample: sdk-quick": "test/readme.test.ts",
    "sample-output: sdk-quick": "test/readme.test.ts",
    "sample: python": "test/python-package.test.ts",
    "sample: cli-quick": "test/cli.test.ts",
    "sample: curl": "test/readme.test.ts",
  },
  "docs/api.md": {
    "sample: grpcurl": "test/grpcurl-sample.test.ts",
    "sample: curl": "test/readme.test.ts",
    "sample: typescript": "test/readme.test.ts",
    "sample-output: typescript": "test/readme.test.ts",
  },
  "docs/sdk.md": {
    "sample: sdk": "test/readme.test.ts",
    "sample-output: sdk": "test/readme.test.ts",
  },
  "docs/python.md": {
    "sample: python": "test/python-package.test.ts",
  },
  "docs/cli.md": {
    "sample: cli": "test/cli.test.ts",
  },
  "packages/client/README.md": {
    "sample: package": "test/client-package.test.ts",
    "sample-output: package": "test/client-package.test.ts",
  },
  "clients/python/README.md": {
    "sample: python-package": "test/python-package.test.ts",
    "sample-output: python-package": "test/python-package.test.ts",
  },
};

/** The Markdown files whose marked blocks must be tested. */
function documents(): string[] {
  const docs = readdirSync(join(projectRoot, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`);
  return ["README.md", ...docs, "packages/client/README.md", "clients/python/README.md"];
}

describe("marked code blocks of the documentation", () => {
  it("are each listed with the test that runs them", () => {
    const untested = documents().flatMap((document) =>
      docMarkers(document)
        .filter((marker) => TESTED[document]?.[marker] === undefined)
        .map((marker) => `${document}: <!-- ${marker} -->`),
    );
    expect(untested, "marked blocks no test reads (add them to TESTED and to a test)").toEqual([]);
  });

  it("appear once each, right before a fenced block", () => {
    for (const document of documents()) {
      const markers = docMarkers(document);
      expect(new Set(markers).size, `${document} repeats a marker`).toBe(markers.length);
      for (const marker of markers) expect(docBlock(document, marker).trim()).not.toBe("");
    }
  });

  it("are read by the test listed for them, which names the document and the marker", () => {
    const unread: string[] = [];
    for (const [document, markers] of Object.entries(TESTED)) {
      const present = docMarkers(document);
      for (const [marker, testFile] of Object.entries(markers)) {
        expect(present, `${document} lost its <!-- ${marker} --> block`).toContain(marker);
        const source = readFileSync(join(projectRoot, testFile), "utf8");
        const named = [document, marker.slice(marker.indexOf(":") + 2)].every((part) =>
          source.includes(part),
        );
        if (!named) unread.push(`${testFile} does not read ${document} "${marker}"`);
      }
    }
    expect(unread).toEqual([]);
  });
});
