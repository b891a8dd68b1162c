/** The `queue` command: create, get, list, update and delete queues with every property. */
import type { QueueDescription, QueueOptions } from "../client/index.js";
import { flag, type Parsed } from "./args.js";
import type { Command } from "./command.js";
import { runNamedEntityAction } from "./named-entity-actions.js";
import { bytes, count, duration, toggle, ttl } from "./property-flags.js";

function queueOptions(p: Parsed): QueueOptions {
  return {
    // Sent when given, so that an update trying to change it gets the broker's refusal.
    requiresSession: flag(p, "requires-session") || undefined,
    lockDurationMs: duration(p, "lock-duration", "queue"),
    maxDeliveryCount: count(p, "max-delivery-count", "queue"),
    defaultMessageTtlMs: duration(p, "default-message-ttl", "queue"),
    deadLetteringOnMessageExpiration: toggle(p, "dead-lettering-on-expiration", "queue"),
    maxMessageSizeBytes: bytes(p, "max-message-size", "queue"),
    maxSessionStateSizeBytes: bytes(p, "max-session-state-size", "queue"),
    requiresDuplicateDetection: toggle(p, "requires-duplicate-detection", "queue"),
    duplicateDetectionWindowMs: duration(p, "duplicate-detection-window", "queue"),
    maxSizeBytes: bytes(p, "max-size", "queue"),
  };
}

export function queueLine(q: QueueDescription): string {
  const p = q.properties;
  const r = q.runtimeInfo;
  return `${q.name}\tsessions=${p.requiresSession} lock=${p.lockDurationMs}ms maxDelivery=${p.maxDeliveryCount} ttl=${ttl(p.defaultMessageTtlMs)} active=${r.activeMessageCount} deadLetter=${r.deadLetterMessageCount}`;
}

export const QUEUE_COMMAND: Command = {
  options: {
    "requires-session": { type: "boolean" },
    "lock-duration": { type: "string" },
    "max-delivery-count": { type: "string" },
    "default-message-ttl": { type: "string" },
    "dead-lettering-on-expiration": { type: "boolean" },
    "no-dead-lettering-on-expiration": { type: "boolean" },
    "max-message-size": { type: "string" },
    "max-session-state-size": { type: "string" },
    "requires-duplicate-detection": { type: "boolean" },
    "no-requires-duplicate-detection": { type: "boolean" },
    "duplicate-detection-window": { type: "string" },
    "max-size": { type: "string" },
  },
  run: (ctx) =>
    runNamedEntityAction(ctx, {
      command: "queue",
      options: queueOptions,
      line: queueLine,
      create: (c, name, options) => c.client().createQueue(name, options),
      update: (c, name, options) => c.client().updateQueue(name, options),
      list: (c) => c.client().listQueues(),
      get: (c, name) => c.client().getQueue(name),
      remove: (c, name) => c.client().deleteQueue(name),
    }),
};
