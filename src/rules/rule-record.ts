/**
 * A subscription rule as the registry stores it (JSON), and its conversion from and to the
 * API's `sessionbus.v1.Rule`. Everything is validated on the way in, so a stored rule
 * always compiles (see message-filter.ts).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CorrelationFilter,
  CorrelationFilterSchema,
  FalseFilterSchema,
  type Rule,
  RuleSchema,
  SqlFilterSchema,
  TrueFilterSchema,
} from "../../gen/ts/sessionbus/v1/topic_pb.js";
import { InvalidArgumentError } from "../broker/errors.js";
import {
  checkCorrelationField,
  checkFilterProperties,
  checkFilterValue,
  checkRuleSize,
} from "./rule-limits.js";
import {
  CORRELATION_FIELDS,
  type CorrelationField,
  type RuleFilterRecord,
  type RuleRecord,
} from "./rule-types.js";
import { parseSqlFilter } from "./sql-parser.js";
import { SqlSyntaxError } from "./sql-syntax-error.js";
import {
  type StoredPropertyValue,
  storedPropertyFromProto,
  storedPropertyToProto,
} from "./stored-property-value.js";

export {
  CORRELATION_FIELDS,
  type CorrelationField,
  type RuleFilterRecord,
  type RuleRecord,
} from "./rule-types.js";
export type { StoredPropertyValue } from "./stored-property-value.js";

/** The API's name of each correlation filter field, for error messages. */
const PROTO_NAMES: Record<CorrelationField, string> = {
  correlationId: "correlation_id",
  messageId: "message_id",
  to: "to",
  replyTo: "reply_to",
  subject: "subject",
  sessionId: "session_id",
  replyToSessionId: "reply_to_session_id",
  contentType: "content_type",
};

export const DEFAULT_RULE_NAME = "$Default";
const RULE_NAME = /^[A-Za-z0-9.\-_$]{1,50}$/;

/** The rule every subscription starts with: accepts every message. */
export function defaultRule(now: number): RuleRecord {
  return { name: DEFAULT_RULE_NAME, filter: { kind: "true" }, createdAt: now };
}

/** Throws InvalidArgumentError on `field` unless `name` is 1–50 of [A-Za-z0-9.-_$]. */
export function validateRuleName(name: string, field: string): void {
  if (RULE_NAME.test(name)) return;
  const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name;
  throw new InvalidArgumentError(
    field,
    `${field} "${shown}" is not a valid rule name: use 1 to 50 letters, digits, ".", "-", "_" or "$".`,
  );
}

/**
 * Validates a proto Rule and converts it; `field` is the request field path, e.g. "rule".
 * Throws InvalidArgumentError naming the offending field (for SQL, with its position).
 */
export function ruleFromProto(rule: Rule | undefined, field: string, now: number): RuleRecord {
  if (rule === undefined) {
    throw new InvalidArgumentError(
      field,
      `${field} is missing: give a rule with a name and one filter (sql_filter, correlation_filter, true_filter or false_filter).`,
    );
  }
  validateRuleName(rule.name, `${field}.name`);
  const record: RuleRecord = {
    name: rule.name,
    filter: filterFromProto(rule, field),
    createdAt: now,
  };
  checkRuleSize(record, field);
  return record;
}

function filterFromProto(rule: Rule, field: string): RuleFilterRecord {
  const filter = rule.filter;
  switch (filter.case) {
    case "sqlFilter":
      return { kind: "sql", expression: checkedExpression(filter.value.expression, field) };
    case "correlationFilter":
      return correlationFromProto(filter.value, `${field}.correlation_filter`);
    case "trueFilter":
      return { kind: "true" };
    case "falseFilter":
      return { kind: "false" };
    default:
      throw new InvalidArgumentError(
        `${field}.filter`,
        `${field} "${rule.name}" has no filter: set one of sql_filter, correlation_filter, true_filter or false_filter.`,
      );
  }
}

function checkedExpression(expression: string, field: string): string {
  try {
    parseSqlFilter(expression);
    return expression;
  } catch (error) {
    if (!(error instanceof SqlSyntaxError)) throw error;
    throw new InvalidArgumentError(`${field}.sql_filter.expression`, error.message, {
      position: error.position,
    });
  }
}

function correlationFromProto(filter: CorrelationFilter, field: string): RuleFilterRecord {
  const fields: Partial<Record<CorrelationField, string>> = {};
  for (const name of CORRELATION_FIELDS) {
    const value = filter[name];
    if (value === undefined) continue;
    checkCorrelationField(name, value, field, PROTO_NAMES[name]);
    fields[name] = value;
  }
  const entries = Object.entries(filter.applicationProperties);
  checkFilterProperties(
    entries.map(([name]) => name),
    `${field}.application_properties`,
  );
  // fromEntries defines own keys, so even a property named "__proto__" is kept.
  const properties: Record<string, StoredPropertyValue> = Object.fromEntries(
    entries.map(([name, value]) => {
      const valueField = `${field}.application_properties[${JSON.stringify(name)}]`;
      const typed = value.value;
      if (typed.case === "stringValue" || typed.case === "bytesValue") {
        checkFilterValue(typed.value, valueField);
      }
      return [name, storedPropertyFromProto(value, valueField)];
    }),
  );
  if (Object.keys(fields).length === 0 && Object.keys(properties).length === 0) {
    throw new InvalidArgumentError(
      field,
      `${field} compares nothing: set at least one field or application property, or use true_filter to accept every message.`,
    );
  }
  return { kind: "correlation", fields, properties };
}

export function ruleToProto(record: RuleRecord): Rule {
  return create(RuleSchema, {
    name: record.name,
    filter: filterToProto(record.filter),
    createdAt: timestampFromMs(record.createdAt),
  });
}

function filterToProto(filter: RuleFilterRecord): Rule["filter"] {
  switch (filter.kind) {
    case "sql":
      return {
        case: "sqlFilter",
        value: create(SqlFilterSchema, { expression: filter.expression }),
      };
    case "correlation": {
      const applicationProperties = Object.fromEntries(
        Object.entries(filter.properties).map(([name, value]) => [
          name,
          storedPropertyToProto(value),
        ]),
      );
      return {
        case: "correlationFilter",
        value: create(CorrelationFilterSchema, { ...filter.fields, applicationProperties }),
      };
    }
    case "true":
      return { case: "trueFilter", value: create(TrueFilterSchema) };
    case "false":
      return { case: "falseFilter", value: create(FalseFilterSchema) };
  }
}
