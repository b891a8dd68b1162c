/**
 * Rules of a subscription: add, list, delete. A subscription gets a topic message when any
 * of its rules matches it; a rule applies to messages sent after it was added.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Rule, RuleSchema } from "../../gen/ts/sessionbus/v1/topic_pb.js";
import { fromProtoValue, type PropertyValue, toProtoValue } from "./message.js";
import { type CallOptions, invoke, type Rpc } from "./rpc.js";

/**
 * A SQL-like condition over system ("sys.Label", "sys.CorrelationId", …) and application
 * properties, e.g. "sys.Label = 'red' AND priority > 3"; at most 1024 characters.
 */
export interface SqlRuleFilter {
  kind: "sql";
  expression: string;
}

/** Equality on the fields given (all of them together); unset fields are not compared. */
export interface CorrelationRuleFilter {
  kind: "correlation";
  correlationId?: string | undefined;
  messageId?: string | undefined;
  to?: string | undefined;
  replyTo?: string | undefined;
  /** The label ("sys.Label"). */
  subject?: string | undefined;
  sessionId?: string | undefined;
  replyToSessionId?: string | undefined;
  contentType?: string | undefined;
  /** Compared by value: 5n equals 5.0, but "5" does not equal 5. */
  applicationProperties?: Record<string, PropertyValue> | undefined;
}

/** Which topic messages a rule matches: `true` every one, `false` none. */
export type RuleFilter =
  | SqlRuleFilter
  | CorrelationRuleFilter
  | { kind: "true" }
  | { kind: "false" };

export interface RuleOptions {
  /** 1-50 letters, digits, ".", "-", "_" or "$". */
  name: string;
  filter: RuleFilter;
}

export interface RuleDescription {
  name: string;
  filter: RuleFilter;
  createdAt: Date | undefined;
}

/** Adds a rule; it applies to the messages sent from then on. */
export async function createRule(
  rpc: Rpc,
  topicName: string,
  subscriptionName: string,
  rule: RuleOptions,
  call?: CallOptions,
): Promise<RuleDescription> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.createRule({ topicName, subscriptionName, rule: toProtoRule(rule) }, c),
  );
  if (!response.rule)
    throw new Error(`The broker's answer about rule "${rule.name}" carries no rule`);
  return fromProtoRule(response.rule);
}

/** The subscription's rules in order of creation. */
export async function listRules(
  rpc: Rpc,
  topicName: string,
  subscriptionName: string,
  call?: CallOptions,
): Promise<RuleDescription[]> {
  const response = await invoke(rpc, call, (c) =>
    rpc.admin.listRules({ topicName, subscriptionName }, c),
  );
  return response.rules.map(fromProtoRule);
}

export async function deleteRule(
  rpc: Rpc,
  topicName: string,
  subscriptionName: string,
  ruleName: string,
  call?: CallOptions,
): Promise<void> {
  await invoke(rpc, call, (c) =>
    rpc.admin.deleteRule({ topicName, subscriptionName, ruleName }, c),
  );
}

export function toProtoRule(rule: RuleOptions): MessageInitShape<typeof RuleSchema> {
  const { filter } = rule;
  switch (filter.kind) {
    case "sql":
      return {
        name: rule.name,
        filter: { case: "sqlFilter", value: { expression: filter.expression } },
      };
    case "true":
      return { name: rule.name, filter: { case: "trueFilter", value: {} } };
    case "false":
      return { name: rule.name, filter: { case: "falseFilter", value: {} } };
    case "correlation": {
      const { kind: _kind, applicationProperties, ...fields } = filter;
      return {
        name: rule.name,
        filter: {
          case: "correlationFilter",
          value: {
            ...fields,
            applicationProperties: Object.fromEntries(
              Object.entries(applicationProperties ?? {}).map(([key, value]) => [
                key,
                { value: toProtoValue(value) },
              ]),
            ),
          },
        },
      };
    }
  }
}

function fromProtoRule(rule: Rule): RuleDescription {
  return {
    name: rule.name,
    filter: fromProtoFilter(rule.filter),
    createdAt: rule.createdAt ? timestampDate(rule.createdAt) : undefined,
  };
}

function fromProtoFilter(filter: Rule["filter"]): RuleFilter {
  switch (filter.case) {
    case "sqlFilter":
      return { kind: "sql", expression: filter.value.expression };
    case "falseFilter":
      return { kind: "false" };
    case "correlationFilter": {
      const { applicationProperties, ...rest } = filter.value;
      const correlation: CorrelationRuleFilter = { kind: "correlation" };
      for (const field of CORRELATION_FIELDS) {
        if (rest[field] !== undefined) correlation[field] = rest[field];
      }
      correlation.applicationProperties = Object.fromEntries(
        Object.entries(applicationProperties).flatMap(([key, value]) => {
          const plain = fromProtoValue(value);
          return plain === undefined ? [] : [[key, plain]];
        }),
      );
      return correlation;
    }
    case "trueFilter":
      return { kind: "true" };
    default:
      throw new Error("The broker sent a rule without a filter");
  }
}

const CORRELATION_FIELDS = [
  "correlationId",
  "messageId",
  "to",
  "replyTo",
  "subject",
  "sessionId",
  "replyToSessionId",
  "contentType",
] as const;
