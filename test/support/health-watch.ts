/**
 * Follows a broker's grpc.health.v1 status through one Watch stream, as a load balancer or
 * orchestrator would, with a client that shares no code with the broker (grpc-js, the types
 * read from the .proto file).
 *
 * ```ts
 * const health = watchHealth(broker.url);
 * await health.until("SERVING");
 * await killTwoNodes();
 * await health.until("NOT_SERVING", 30_000);
 * health.history; // every status with the time it arrived, e.g. to measure a gap
 * health.close();
 * ```
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

export interface HealthChange {
  status: ServingStatus;
  /** When it arrived (Date.now()). */
  atMs: number;
}

export interface HealthWatch {
  /** Every status the stream sent, oldest first. */
  readonly history: readonly HealthChange[];
  /** The last status sent; undefined before the first. */
  readonly current: ServingStatus | undefined;
  /**
   * Resolves once the status is `status` (at once when it is now); rejects when `timeoutMs`
   * passes first or the stream ends.
   * @param timeoutMs @default 60_000
   */
  until(status: ServingStatus, timeoutMs?: number): Promise<void>;
  /** Ends the stream and the client. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 60_000;

const healthService = (() => {
  const definition = protoLoader.loadSync("grpc/health/v1/health.proto", {
    includeDirs: [fileURLToPath(new URL("../../proto", import.meta.url))],
    keepCase: true,
    enums: String,
    defaults: true,
  });
  const service = definition["grpc.health.v1.Health"];
  if (service === undefined || "format" in service) throw new Error("no grpc.health.v1.Health");
  const watch = service.Watch;
  if (watch === undefined) throw new Error("no grpc.health.v1.Health/Watch");
  return watch;
})();

/** Opens Watch("") (the whole server) on the broker at `url` (http://host:port). */
export function watchHealth(url: string): HealthWatch {
  const client = new grpc.Client(new URL(url).host, grpc.credentials.createInsecure());
  const call = client.makeServerStreamRequest(
    healthService.path,
    (request: { service: string }) => healthService.requestSerialize(request),
    (bytes: Buffer) => healthService.responseDeserialize(bytes) as { status: ServingStatus },
    { service: "" },
    new grpc.Metadata(),
  );
  const history: HealthChange[] = [];
  const waiters = new Set<{ status: ServingStatus; resolve(): void; reject(error: Error): void }>();
  let ended: Error | undefined;
  call.on("data", ({ status }: { status: ServingStatus }) => {
    history.push({ status, atMs: Date.now() });
    for (const waiter of [...waiters]) if (waiter.status === status) waiter.resolve();
  });
  const end = (why: string) => {
    ended ??= new Error(`the health Watch stream ended (${why})`);
    for (const waiter of [...waiters]) waiter.reject(ended);
  };
  call.on("error", (error: Error) => end(error.message));
  call.on("end", () => end("end"));

  return {
    history,
    get current() {
      return history.at(-1)?.status;
    },
    until(status, timeoutMs = DEFAULT_TIMEOUT_MS) {
      if (history.at(-1)?.status === status) return Promise.resolve();
      if (ended !== undefined) return Promise.reject(ended);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const seen = history.map((change) => change.status).join(" → ") || "nothing";
          reject(new Error(`health was not ${status} within ${timeoutMs} ms (saw ${seen})`));
        }, timeoutMs);
        const waiter = {
          status,
          resolve: () => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve();
          },
          reject: (error: Error) => {
            clearTimeout(timer);
            waiters.delete(waiter);
            reject(error);
          },
        };
        waiters.add(waiter);
      });
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}
