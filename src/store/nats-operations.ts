import type { NatsConnection } from "@nats-io/transport-node";

/**
 * Sees every request the store makes to NATS (JetStream API calls, publishes to streams,
 * acks with confirmation, KV writes): its operation, how long it took, and whether it was
 * answered. Operations come from a fixed list (see natsOperation), never a subject.
 */
export type NatsRequestObserver = (operation: string, seconds: number, ok: boolean) => void;

/** JetStream API requests by their subject after `$JS.API.`, longest first. */
const API_REQUESTS = [
  "STREAM.MSG.DELETE",
  "STREAM.MSG.GET",
  "STREAM.INFO",
  "STREAM.CREATE",
  "STREAM.UPDATE",
  "STREAM.DELETE",
  "STREAM.PURGE",
  "STREAM.NAMES",
  "STREAM.LIST",
  "CONSUMER.DURABLE.CREATE",
  "CONSUMER.CREATE",
  "CONSUMER.INFO",
  "CONSUMER.DELETE",
  "CONSUMER.LIST",
  "CONSUMER.NAMES",
  "CONSUMER.MSG.NEXT",
  "DIRECT.GET",
  "INFO",
].map((request) => ({
  prefix: `$JS.API.${request}`,
  operation: request.toLowerCase().replaceAll(".", "_"),
}));

/** The operation of a request to `subject`. */
export function natsOperation(subject: string): string {
  if (subject.startsWith("$JS.API.")) {
    for (const { prefix, operation } of API_REQUESTS) {
      if (
        subject.startsWith(prefix) &&
        (subject.length === prefix.length || subject.charCodeAt(prefix.length) === 46) // "."
      ) {
        return operation;
      }
    }
    return "api_other";
  }
  if (subject.startsWith("$JS.ACK.")) return "ack";
  if (subject.startsWith("$KV.")) return "kv_put";
  return "publish";
}

/**
 * Times every `request` made on the connection, nats.js's own JetStream and KV clients'
 * included: they all call the connection's `request` method, which is replaced on this one
 * object (nats.js offers no hook for it). Long polls (pulls, watches) are subscriptions,
 * not requests, and are not timed.
 */
export function observeRequests(nc: NatsConnection, observe: NatsRequestObserver): void {
  const request = nc.request.bind(nc);
  nc.request = (subject, payload, options) => {
    const started = performance.now();
    const operation = natsOperation(subject);
    return request(subject, payload, options).then(
      (reply) => {
        observe(operation, (performance.now() - started) / 1000, true);
        return reply;
      },
      (error: unknown) => {
        observe(operation, (performance.now() - started) / 1000, false);
        throw error;
      },
    );
  };
}
