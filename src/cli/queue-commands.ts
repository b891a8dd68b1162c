/** The `queue` command: create, get, list, update and delete queues with every property. */
import type { QueueDescription, QueueOptions } from "../client/index.js";
import { flag, type Parsed, positionals, UsageError } from "./args.js";
import { type Command, EXIT, print } from "./command.js";
import { bytes, count, duration, someChange, toggle, ttl } from "./property-flags.js";

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
  async run(ctx) {
    const [action] = ctx.parsed.positionals;
    const p = ctx.parsed;
    switch (action) {
      case "create": {
        const [, name] = positionals(p, "queue", ["create", "NAME"]) as [string, string];
        const queue = await ctx.client().createQueue(name, queueOptions(p));
        print(ctx, queue, () => `created ${queueLine(queue)}`);
        return EXIT.ok;
      }
      case "update": {
        const [, name] = positionals(p, "queue", ["update", "NAME"]) as [string, string];
        const options = queueOptions(p);
        someChange(options, "queue");
        const queue = await ctx.client().updateQueue(name, options);
        print(ctx, queue, () => `updated ${queueLine(queue)}`);
        return EXIT.ok;
      }
      case "list": {
        positionals(p, "queue", ["list"]);
        const queues: QueueDescription[] = [];
        for await (const q of ctx.client().listQueues()) queues.push(q);
        print(ctx, queues, () => queues.map(queueLine).join("\n") || "(no queues)");
        return EXIT.ok;
      }
      case "get":
      case "show": {
        const [, name] = positionals(p, "queue", [action, "NAME"]) as [string, string];
        const queue = await ctx.client().getQueue(name);
        print(ctx, queue, () => JSON.stringify(queue, null, 2));
        return EXIT.ok;
      }
      case "delete": {
        const [, name] = positionals(p, "queue", ["delete", "NAME"]) as [string, string];
        await ctx.client().deleteQueue(name);
        print(ctx, { deleted: name }, () => `deleted ${name}`);
        return EXIT.ok;
      }
      default:
        throw new UsageError(
          action === undefined
            ? "queue needs an action: create, get, list, update or delete"
            : `unknown queue action "${action}"`,
          "queue",
        );
    }
  },
};
