import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

/**
 * `npm run test:chaos`: the cluster tests that kill or restart the nats-server leading a
 * stream under load. They assert every zero strictly and pass run alone, but not yet
 * reliably beside the rest of the suite on a 2-core machine (issue 14: a completion given
 * back, a stalled drain); they join `npm test` once they do. One file at a time, as each
 * starts a cluster.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: ["test/**/*.chaos-test.ts"],
    maxWorkers: 1,
  },
});
