import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

/**
 * `npm run test:chaos`: the cluster tests that kill or restart nats-servers under load and do
 * not hold every promise yet (issue 14: completions undone after a leader change). They are
 * kept out of `npm test` until they do; one file at a time, as each starts a cluster.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: ["test/**/*.chaos-test.ts"],
    maxWorkers: 1,
  },
});
