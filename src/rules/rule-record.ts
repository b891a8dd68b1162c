// Interim: replaced by the rules branch.
export type StoredPropertyValue =
  | { string: string }
  | { int: string }
  | { double: number }
  | { bool: boolean }
  | { bytes: string }
  | { timestampMs: number };
export type RuleFilterRecord =
  | { kind: "sql"; expression: string }
  | {
      kind: "correlation";
      fields: Partial<Record<string, string>>;
      properties: Record<string, StoredPropertyValue>;
    }
  | { kind: "true" }
  | { kind: "false" };
export interface RuleRecord {
  name: string;
  filter: RuleFilterRecord;
  createdAt: number;
}
export const DEFAULT_RULE_NAME = "$Default";
export function defaultRule(now: number): RuleRecord {
  return { name: DEFAULT_RULE_NAME, filter: { kind: "true" }, createdAt: now };
}

import { create } from "@bufbuild/protobuf";
import { type Rule, RuleSchema } from "../../gen/ts/sessionbus/v1/topic_pb.js";
import { InvalidArgumentError } from "../broker/errors.js";
export function ruleFromProto(rule: Rule | undefined, field: string, now: number): RuleRecord {
  const f = rule?.filter;
  if (!rule || !f || f.case === undefined) throw new InvalidArgumentError(field, "no filter");
  if (f.case === "sqlFilter")
    return {
      name: rule.name,
      filter: { kind: "sql", expression: f.value.expression },
      createdAt: now,
    };
  if (f.case === "trueFilter") return { name: rule.name, filter: { kind: "true" }, createdAt: now };
  if (f.case === "falseFilter")
    return { name: rule.name, filter: { kind: "false" }, createdAt: now };
  const { applicationProperties, $typeName, ...fields } = f.value;
  const properties: Record<string, StoredPropertyValue> = {};
  for (const [k, v] of Object.entries(applicationProperties))
    if (v.value.case === "stringValue") properties[k] = { string: v.value.value };
  return {
    name: rule.name,
    filter: { kind: "correlation", fields: fields as Record<string, string>, properties },
    createdAt: now,
  };
}
export function ruleToProto(record: RuleRecord): Rule {
  return create(RuleSchema, { name: record.name });
}
