/** The `topic`, `subscription` and `rule` commands: administration of topics. */
import type {
  RuleDescription,
  SubscriptionDescription,
  SubscriptionOptions,
  TopicDescription,
  TopicOptions,
} from "../client/index.js";
import { flag, type Parsed, positionals, str, UsageError } from "./args.js";
import { type Command, type Context, EXIT, print } from "./command.js";
import { filterText, RULE_FILTER_OPTIONS, ruleFilter } from "./message-flags.js";
import { runNamedEntityAction } from "./named-entity-actions.js";
import { bytes, count, duration, someChange, toggle, ttl } from "./property-flags.js";

function topicOptions(p: Parsed): TopicOptions {
  return {
    defaultMessageTtlMs: duration(p, "default-message-ttl", "topic"),
    maxMessageSizeBytes: bytes(p, "max-message-size", "topic"),
    requiresDuplicateDetection: toggle(p, "requires-duplicate-detection", "topic"),
    duplicateDetectionWindowMs: duration(p, "duplicate-detection-window", "topic"),
    maxSizeBytes: bytes(p, "max-size", "topic"),
  };
}

function subscriptionOptions(p: Parsed): SubscriptionOptions {
  return {
    // Sent when given, so that an update trying to change it gets the broker's refusal.
    requiresSession: flag(p, "requires-session") || undefined,
    lockDurationMs: duration(p, "lock-duration", "subscription"),
    maxDeliveryCount: count(p, "max-delivery-count", "subscription"),
    defaultMessageTtlMs: duration(p, "default-message-ttl", "subscription"),
    deadLetteringOnMessageExpiration: toggle(p, "dead-lettering-on-expiration", "subscription"),
    maxSessionStateSizeBytes: bytes(p, "max-session-state-size", "subscription"),
  };
}

function topicLine(t: TopicDescription): string {
  const p = t.properties;
  const r = t.runtimeInfo;
  return `${t.name}\tsubscriptions=${t.subscriptionCount} ttl=${ttl(p.defaultMessageTtlMs)} duplicateDetection=${p.requiresDuplicateDetection} active=${r.activeMessageCount} deadLetter=${r.deadLetterMessageCount}`;
}

function subscriptionLine(s: SubscriptionDescription): string {
  const p = s.properties;
  const r = s.runtimeInfo;
  return `${s.path}\tsessions=${p.requiresSession} lock=${p.lockDurationMs}ms maxDelivery=${p.maxDeliveryCount} ttl=${ttl(p.defaultMessageTtlMs)} active=${r.activeMessageCount} deadLetter=${r.deadLetterMessageCount}`;
}

function ruleLine(r: RuleDescription): string {
  return `${r.name}\t${filterText(r.filter)}`;
}

function unknownAction(command: string, action: string | undefined, actions: string): never {
  throw new UsageError(
    action === undefined
      ? `${command} needs an action: ${actions}`
      : `unknown ${command} action "${action}"`,
    command,
  );
}

/** Rejects filter flags on actions that take none (they would be silently ignored). */
function noFilterFlags(ctx: Context, command: string, action: string): void {
  if (ruleFilter(ctx.parsed, command) !== undefined || str(ctx.parsed, "rule-name") !== undefined) {
    throw new UsageError(`${command} ${action} takes no rule flags`, command);
  }
}

export const TOPIC_COMMANDS: Record<string, Command> = {
  topic: {
    options: {
      "default-message-ttl": { type: "string" },
      "max-message-size": { type: "string" },
      "requires-duplicate-detection": { type: "boolean" },
      "no-requires-duplicate-detection": { type: "boolean" },
      "duplicate-detection-window": { type: "string" },
      "max-size": { type: "string" },
    },
    run: (ctx) =>
      runNamedEntityAction(ctx, {
        command: "topic",
        options: topicOptions,
        line: topicLine,
        create: (c, name, options) => c.client().createTopic(name, options),
        update: (c, name, options) => c.client().updateTopic(name, options),
        list: (c) => c.client().listTopics(),
        get: (c, name) => c.client().getTopic(name),
        remove: (c, name) => c.client().deleteTopic(name),
        deleted: (name) => `deleted ${name} and its subscriptions`,
      }),
  },

  subscription: {
    options: {
      "requires-session": { type: "boolean" },
      "lock-duration": { type: "string" },
      "max-delivery-count": { type: "string" },
      "default-message-ttl": { type: "string" },
      "dead-lettering-on-expiration": { type: "boolean" },
      "no-dead-lettering-on-expiration": { type: "boolean" },
      "max-session-state-size": { type: "string" },
      "rule-name": { type: "string" },
      ...RULE_FILTER_OPTIONS,
    },
    async run(ctx) {
      const p = ctx.parsed;
      const [action] = p.positionals;
      switch (action) {
        case "create": {
          const [, topic, name] = positionals(p, "subscription", ["create", "TOPIC", "NAME"]) as [
            string,
            string,
            string,
          ];
          const filter = ruleFilter(p, "subscription");
          const ruleName = str(p, "rule-name");
          if (ruleName !== undefined && filter === undefined) {
            throw new UsageError(
              "--rule-name needs a filter: --sql, correlation flags, --true or --false",
              "subscription",
            );
          }
          if (filter?.kind === "sql") ctx.sqlExpression = filter.expression;
          const subscription = await ctx.client().createSubscription(topic, name, {
            ...subscriptionOptions(p),
            rule: filter && { name: ruleName, filter },
          });
          print(ctx, subscription, () => `created ${subscriptionLine(subscription)}`);
          return EXIT.ok;
        }
        case "update": {
          const [, topic, name] = positionals(p, "subscription", ["update", "TOPIC", "NAME"]) as [
            string,
            string,
            string,
          ];
          // Rules change with "rule add|delete", not here.
          noFilterFlags(ctx, "subscription", action);
          const options = subscriptionOptions(p);
          someChange(options, "subscription");
          const subscription = await ctx.client().updateSubscription(topic, name, options);
          print(ctx, subscription, () => `updated ${subscriptionLine(subscription)}`);
          return EXIT.ok;
        }
        case "list": {
          positionals(p, "subscription", ["list", "TOPIC"]);
          noFilterFlags(ctx, "subscription", action);
          const [, topic] = p.positionals as [string, string];
          const subscriptions: SubscriptionDescription[] = [];
          for await (const s of ctx.client().listSubscriptions(topic)) subscriptions.push(s);
          print(
            ctx,
            subscriptions,
            () => subscriptions.map(subscriptionLine).join("\n") || "(no subscriptions)",
          );
          return EXIT.ok;
        }
        case "get":
        case "show": {
          const [, topic, name] = positionals(p, "subscription", [action, "TOPIC", "NAME"]) as [
            string,
            string,
            string,
          ];
          noFilterFlags(ctx, "subscription", action);
          const client = ctx.client();
          const [subscription, rules] = await Promise.all([
            client.getSubscription(topic, name),
            client.listRules(topic, name),
          ]);
          const shown = { ...subscription, rules };
          print(ctx, shown, () => JSON.stringify(shown, null, 2));
          return EXIT.ok;
        }
        case "delete": {
          const [, topic, name] = positionals(p, "subscription", ["delete", "TOPIC", "NAME"]) as [
            string,
            string,
            string,
          ];
          noFilterFlags(ctx, "subscription", action);
          await ctx.client().deleteSubscription(topic, name);
          print(
            ctx,
            { deleted: `${topic}/subscriptions/${name}` },
            () => `deleted ${topic}/subscriptions/${name}`,
          );
          return EXIT.ok;
        }
        default:
          return unknownAction("subscription", action, "create, get, list, update or delete");
      }
    },
  },

  rule: {
    options: RULE_FILTER_OPTIONS,
    async run(ctx) {
      const p = ctx.parsed;
      const [action] = p.positionals;
      switch (action) {
        case "add": {
          const [, topic, subscription, name] = positionals(p, "rule", [
            "add",
            "TOPIC",
            "SUBSCRIPTION",
            "NAME",
          ]) as [string, string, string, string];
          const filter = ruleFilter(p, "rule");
          if (filter === undefined) {
            throw new UsageError(
              "rule add needs a filter: --sql, correlation flags, --true or --false",
              "rule",
            );
          }
          if (filter.kind === "sql") ctx.sqlExpression = filter.expression;
          const rule = await ctx.client().createRule(topic, subscription, { name, filter });
          print(ctx, rule, () => `added ${ruleLine(rule)}`);
          return EXIT.ok;
        }
        case "list": {
          const [, topic, subscription] = positionals(p, "rule", [
            "list",
            "TOPIC",
            "SUBSCRIPTION",
          ]) as [string, string, string];
          noFilterFlags(ctx, "rule", action);
          const rules = await ctx.client().listRules(topic, subscription);
          print(
            ctx,
            { topic, subscription, rules },
            () => rules.map(ruleLine).join("\n") || "(no rules: the subscription gets nothing)",
          );
          return EXIT.ok;
        }
        case "delete": {
          const [, topic, subscription, name] = positionals(p, "rule", [
            "delete",
            "TOPIC",
            "SUBSCRIPTION",
            "NAME",
          ]) as [string, string, string, string];
          noFilterFlags(ctx, "rule", action);
          await ctx.client().deleteRule(topic, subscription, name);
          print(ctx, { deleted: name }, () => `deleted rule ${name}`);
          return EXIT.ok;
        }
        default:
          return unknownAction("rule", action, "add, list or delete");
      }
    },
  },
};
