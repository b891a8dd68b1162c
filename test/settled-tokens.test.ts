/**
 * The broker remembers settled lock tokens until their lock would have expired (so that a
 * second settle is MESSAGE_ALREADY_SETTLED, not MESSAGE_LOCK_LOST), and then forgets them:
 * a broker settling thousands of messages a second must not keep them all. Unit test of
 * the structure, on fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SettledTokens } from "../src/broker/locks/settled-tokens.js";

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-12-06T10:00:00.250Z") });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("SettledTokens", () => {
  it("keeps each token until its time, then forgets it, with no timer left", () => {
    const settled = new SettledTokens<string>();
    const now = Date.now();
    settled.remember("a", "entry a", now + 1_500);
    settled.remember("b", "entry b", now + 4_000);
    settled.remember("c", "entry c", now + 1_600);
    expect(vi.getTimerCount()).toBe(1);

    vi.advanceTimersByTime(1_000);
    expect([settled.get("a"), settled.get("b"), settled.get("c")]).toEqual([
      "entry a",
      "entry b",
      "entry c",
    ]);

    // Forgotten at most two seconds after their time (whole seconds, one timer), never before.
    vi.advanceTimersByTime(1_800);
    expect([settled.get("a"), settled.get("b"), settled.get("c")]).toEqual([
      undefined,
      "entry b",
      undefined,
    ]);
    expect(settled.size).toBe(1);

    vi.advanceTimersByTime(3_000);
    expect(settled.get("b")).toBeUndefined();
    expect(settled.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("starts its timer again for tokens remembered after it stopped", () => {
    const settled = new SettledTokens<number>();
    settled.remember("x", 1, Date.now() + 500);
    vi.advanceTimersByTime(2_000);
    expect(vi.getTimerCount()).toBe(0);
    settled.remember("y", 2, Date.now() + 500);
    expect(settled.get("y")).toBe(2);
    vi.advanceTimersByTime(2_000);
    expect(settled.get("y")).toBeUndefined();
  });
});
