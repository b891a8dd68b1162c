/**
 * A start step is tried again when nats-server answers it as it does while a replicated
 * stream is still being made (no answer, or "stream not found" for a stream just made), and
 * fails at once on anything else: a broker on a new cluster starts instead of exiting, and a
 * real fault is not hidden behind retries.
 */
import { describe, expect, it } from "vitest";
import { againAtStart } from "../src/store/again-at-start.js";

/** An error shaped as nats.js reports the answer to a consumer creation on a missing stream. */
function streamNotFound(): Error {
  const error = new Error("stream not found");
  error.name = "StreamNotFoundError";
  return error;
}

describe("againAtStart", () => {
  it("tries again after a timeout or a stream not found yet, and returns the step's result", async () => {
    const failures = [
      streamNotFound(),
      Object.assign(new Error("timeout"), { name: "TimeoutError" }),
    ];
    let calls = 0;
    const result = await againAtStart(async () => {
      calls++;
      const failure = failures.shift();
      if (failure) throw failure;
      return "watching";
    });
    expect({ result, calls }).toEqual({ result: "watching", calls: 3 });
  });

  it("fails at once on another error", async () => {
    let calls = 0;
    await expect(
      againAtStart(async () => {
        calls++;
        throw new Error("insufficient resources");
      }),
    ).rejects.toThrow("insufficient resources");
    expect(calls).toBe(1);
  });

  it("gives up after a few tries when the stream never appears", async () => {
    let calls = 0;
    await expect(
      againAtStart(async () => {
        calls++;
        throw streamNotFound();
      }),
    ).rejects.toThrow("stream not found");
    expect(calls).toBeGreaterThan(1);
    expect(calls).toBeLessThanOrEqual(10);
  });
});
