import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startNatsServer } from "../../src/store/nats-server-process.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the nats-server shared by the whole test run; read it with inject("natsUrl"). */
    natsUrl: string;
  }
}

/** Starts one JetStream-enabled nats-server for the run, or uses NATS_URL when it is set. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.NATS_URL;
  if (external !== undefined && external !== "") {
    project.provide("natsUrl", external);
    return async () => {};
  }

  const storeDir = await mkdtemp(join(tmpdir(), "sessionbus-nats-"));
  try {
    const server = await startNatsServer({ storeDir, credentials: "none" });
    project.provide("natsUrl", server.url);
    return async () => {
      await server.stop();
      await rm(storeDir, { recursive: true, force: true });
    };
  } catch (error) {
    await rm(storeDir, { recursive: true, force: true });
    throw error;
  }
}
