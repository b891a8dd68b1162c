import { setMaxListeners } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/ts/grpc/health/v1/health_pb.js";
import type { RouteRegistry } from "./route-table.js";

/** Called after the status of `service` changed to `status`. */
export type HealthListener = (service: string, status: ServingStatus) => void;

/** The serving status of each service name; "" stands for the whole server. */
export interface HealthStatus {
  /** The status of `service`, or undefined when it was never set. */
  get(service: string): ServingStatus | undefined;
  /** Sets the status of `service`. Ignored after shutdown, so a late caller cannot revive it. */
  set(service: string, status: ServingStatus): void;
  /** Marks every service NOT_SERVING, then aborts `shutdownSignal`. Idempotent. */
  shutdown(): void;
  /** Aborted by `shutdown()`; Watch streams end on it. */
  readonly shutdownSignal: AbortSignal;
  /** Calls `listener` after every change of a status; returns the unsubscribe function. */
  onChange(listener: HealthListener): () => void;
}

/** Creates the status holder. The whole server ("") starts SERVING unless `initial` says otherwise. */
export function createHealthStatus(
  initial: Readonly<Record<string, ServingStatus>> = {},
): HealthStatus {
  const statuses = new Map(Object.entries({ "": ServingStatus.SERVING, ...initial }));
  const listeners = new Set<HealthListener>();
  const shutdownController = new AbortController();
  // Every Watch stream listens to it: many watchers are normal.
  setMaxListeners(0, shutdownController.signal);

  const update = (service: string, status: ServingStatus): void => {
    if (statuses.get(service) === status) return;
    statuses.set(service, status);
    // A copy, so a listener that unsubscribes itself does not disturb the loop.
    for (const listener of [...listeners]) listener(service, status);
  };

  return {
    get: (service) => statuses.get(service),
    set(service, status) {
      if (!shutdownController.signal.aborted) update(service, status);
    },
    shutdown() {
      if (shutdownController.signal.aborted) return;
      for (const service of [...statuses.keys()]) update(service, ServingStatus.NOT_SERVING);
      // Aborted after the updates, so every watcher has NOT_SERVING queued before it ends.
      shutdownController.abort();
    },
    shutdownSignal: shutdownController.signal,
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

/** Serves grpc.health.v1.Health from `health`. */
export function registerHealthService(router: RouteRegistry, health: HealthStatus): void {
  router.service(Health, {
    check: (request) => check(health, request),
    watch: (request, context) => watch(health, request, context.signal),
  });
}

function check(health: HealthStatus, request: HealthCheckRequest): { status: ServingStatus } {
  const status = health.get(request.service);
  if (status === undefined) {
    throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
  }
  return { status };
}

async function* watch(
  health: HealthStatus,
  request: HealthCheckRequest,
  signal: AbortSignal,
): AsyncGenerator<Pick<HealthCheckResponse, "status">> {
  for await (const status of watchStatus(health, request.service, signal)) {
    yield { status };
  }
}

/**
 * Yields the current status of `service` (SERVICE_UNKNOWN if it was never set), then each
 * different one, until `signal` or the shutdown of `health` aborts.
 */
async function* watchStatus(
  health: HealthStatus,
  service: string,
  signal: AbortSignal,
): AsyncGenerator<ServingStatus> {
  const pending: ServingStatus[] = [];
  let wake = (): void => {};
  const wakeUp = (): void => wake();
  // Subscribe before reading the current status, so no change can fall in between.
  const unsubscribe = health.onChange((changed, status) => {
    if (changed !== service) return;
    pending.push(status);
    wake();
  });
  signal.addEventListener("abort", wakeUp);
  health.shutdownSignal.addEventListener("abort", wakeUp);
  try {
    let last = health.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
    yield last;
    for (;;) {
      for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
        if (next === last) continue;
        last = next;
        yield next;
      }
      if (signal.aborted || health.shutdownSignal.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", wakeUp);
    health.shutdownSignal.removeEventListener("abort", wakeUp);
  }
}
