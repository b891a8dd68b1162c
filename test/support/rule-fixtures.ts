/**
 * Builders for the rule engine's unit tests: messages with typed application properties,
 * and proto rules, without any broker.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Message,
  MessageSchema,
  type PropertyValue,
  PropertyValueSchema,
} from "../../gen/ts/sessionbus/v1/message_pb.js";
import { type Rule, RuleSchema } from "../../gen/ts/sessionbus/v1/topic_pb.js";
import { InvalidArgumentError } from "../../src/broker/errors.js";
import { compileRules } from "../../src/rules/message-filter.js";
import { ruleFromProto } from "../../src/rules/rule-record.js";

type SystemField =
  | "messageId"
  | "correlationId"
  | "sessionId"
  | "replyTo"
  | "replyToSessionId"
  | "subject"
  | "to"
  | "contentType";

export type PropertyInput = string | bigint | number | boolean | Uint8Array | Date;

/** number becomes a double, bigint an int64. */
export function property(value: PropertyInput): PropertyValue {
  return create(PropertyValueSchema, { value: propertyCase(value) });
}

function propertyCase(value: PropertyInput): PropertyValue["value"] {
  switch (typeof value) {
    case "string":
      return { case: "stringValue", value };
    case "bigint":
      return { case: "intValue", value };
    case "number":
      return { case: "doubleValue", value };
    case "boolean":
      return { case: "boolValue", value };
    default:
      return value instanceof Date
        ? { case: "timestampValue", value: timestampFromMs(value.getTime()) }
        : { case: "bytesValue", value };
  }
}

export function message(
  properties: Record<string, PropertyInput> = {},
  fields: Partial<Pick<Message, SystemField>> = {},
): Message {
  const applicationProperties = Object.fromEntries(
    Object.entries(properties).map(([name, value]) => [name, property(value)]),
  );
  return create(MessageSchema, { ...fields, applicationProperties });
}

export function sqlRule(expression: string, name = "r1"): Rule {
  return create(RuleSchema, {
    name,
    filter: { case: "sqlFilter", value: { expression } },
  });
}

/** Validates like the admin RPC does, then compiles like the fan-out does. */
export function sqlMatches(expression: string, target: Message): boolean {
  return compileRules([ruleFromProto(sqlRule(expression), "rule", 0)])(target);
}

export interface RefusedRule {
  field: string | undefined;
  position: number | undefined;
  message: string;
  reason: string;
}

/** The InvalidArgumentError ruleFromProto throws for `rule`; fails the test if none. */
export function refusal(rule: Rule | undefined): RefusedRule {
  try {
    ruleFromProto(rule, "rule", 0);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    return {
      field: error.subject.field,
      position: error.subject.position,
      message: error.message,
      reason: error.reason,
    };
  }
  throw new Error("expected ruleFromProto to refuse the rule, but it was accepted");
}
