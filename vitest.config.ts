import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          // Most test time is waiting (lock expiry, TTLs, windows), not CPU: run three files
          // at once even on two cores.
          maxWorkers: 3,
          sequence: { groupOrder: 0 },
        },
      },
      {
        // The cluster tests that kill or restart the nats-server leading a stream under load
        // (issue 14). They run after the rest of the suite, one file at a time, each with a
        // cluster of its own: their bounds are for a busy machine, not for one shared with
        // two other test files also starting clusters and brokers.
        extends: true,
        test: {
          name: "chaos",
          include: ["test/**/*.chaos-test.ts"],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
