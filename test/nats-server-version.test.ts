import { describe, expect, it } from "vitest";
import { supportsSyncAlways } from "../src/store/nats-server-version.js";

describe("supportsSyncAlways (sync_interval: always, nats-server 2.10.0 and later)", () => {
  it("is false for 2.9.10, what Debian ships", () => {
    expect(supportsSyncAlways("nats-server: v2.9.10")).toBe(false);
    expect(supportsSyncAlways("nats-server: v2.9.25")).toBe(false);
  });

  it("is true from 2.10.0 on", () => {
    expect(supportsSyncAlways("nats-server: v2.10.0")).toBe(true);
    expect(supportsSyncAlways("nats-server: v2.10.24")).toBe(true);
    expect(supportsSyncAlways("nats-server: v2.11.3\n")).toBe(true);
    expect(supportsSyncAlways("nats-server: v3.0.0")).toBe(true);
  });

  it("is false for a pre-release of 2.10.0, true for one of a later release", () => {
    expect(supportsSyncAlways("nats-server: v2.10.0-RC.1")).toBe(false);
    expect(supportsSyncAlways("nats-server: v2.11.0-beta.2")).toBe(true);
  });

  it("is false for anything that is not a version", () => {
    expect(supportsSyncAlways("")).toBe(false);
    expect(supportsSyncAlways("garbage")).toBe(false);
    expect(supportsSyncAlways("nats-server: version unknown")).toBe(false);
    expect(supportsSyncAlways("v2.10")).toBe(false);
  });
});
