/**
 * Size limits of subscription rules. Rules live in their subscription's registry record, one
 * NATS message of at most 1 MiB, so each rule and all rules of a subscription together are
 * bounded; every string of a correlation filter is bounded before anything is converted.
 */

import { MAX_ENTITY_PATH_LENGTH } from "../broker/entities/entity-path.js";
import { InvalidArgumentError } from "../broker/errors.js";
import {
  checkCharacterLimit,
  codePointLength,
  MAX_ID_LENGTH,
} from "../broker/limits/character-limits.js";
import type { CorrelationField, RuleRecord } from "./rule-types.js";

/** Characters (code points) of a correlation filter's other strings, as of a SQL expression. */
export const MAX_FILTER_TEXT_LENGTH = 1024;
/** Bytes of a correlation filter's bytes property value. */
export const MAX_FILTER_BYTES_VALUE = 1024;
/** Application properties one correlation filter compares. */
export const MAX_FILTER_PROPERTIES = 64;
/** One rule as stored (UTF-8 JSON); a 1,024-character SQL expression always fits. */
export const MAX_RULE_BYTES = 8 * 1024;
/** All rules of one subscription as stored, leaving the record room below 1 MiB. */
export const MAX_RULES_BYTES_PER_SUBSCRIPTION = 512 * 1024;

/** A filter field that mirrors a message field gets that field's limit. */
const FIELD_LIMITS: Record<CorrelationField, number> = {
  messageId: MAX_ID_LENGTH,
  sessionId: MAX_ID_LENGTH,
  replyToSessionId: MAX_ID_LENGTH,
  replyTo: MAX_ENTITY_PATH_LENGTH,
  correlationId: MAX_FILTER_TEXT_LENGTH,
  to: MAX_FILTER_TEXT_LENGTH,
  subject: MAX_FILTER_TEXT_LENGTH,
  contentType: MAX_FILTER_TEXT_LENGTH,
};

/** Throws InvalidArgumentError on `field.<name>` if a correlation filter field is too long. */
export function checkCorrelationField(
  name: CorrelationField,
  value: string,
  field: string,
  protoName: string,
): void {
  checkCharacterLimit(value, FIELD_LIMITS[name], `${field}.${protoName}`);
}

/** The number of properties, then each name, before any value is converted. */
export function checkFilterProperties(names: readonly string[], field: string): void {
  if (names.length > MAX_FILTER_PROPERTIES) {
    throw new InvalidArgumentError(
      field,
      `${field} holds ${names.length} properties; at most ${MAX_FILTER_PROPERTIES} are allowed.`,
    );
  }
  for (const name of names) {
    if (name.length <= MAX_FILTER_TEXT_LENGTH) continue;
    const length = codePointLength(name);
    if (length > MAX_FILTER_TEXT_LENGTH) {
      throw new InvalidArgumentError(
        field,
        `${field} has a property name of ${length} characters (Unicode code points). At most ${MAX_FILTER_TEXT_LENGTH} are allowed.`,
      );
    }
  }
}

/** A string or bytes property value of a correlation filter. */
export function checkFilterValue(value: string | Uint8Array, field: string): void {
  if (typeof value === "string") {
    checkCharacterLimit(value, MAX_FILTER_TEXT_LENGTH, field);
  } else if (value.length > MAX_FILTER_BYTES_VALUE) {
    throw new InvalidArgumentError(
      field,
      `${field} is ${value.length} bytes long. At most ${MAX_FILTER_BYTES_VALUE} are allowed.`,
    );
  }
}

/** Bytes of a rule as the registry stores it. */
export function storedRuleBytes(rule: RuleRecord): number {
  return Buffer.byteLength(JSON.stringify(rule));
}

/** Throws InvalidArgumentError on `field` if the rule takes more than MAX_RULE_BYTES stored. */
export function checkRuleSize(rule: RuleRecord, field: string): void {
  const size = storedRuleBytes(rule);
  if (size > MAX_RULE_BYTES) {
    throw new InvalidArgumentError(
      field,
      `${field} "${rule.name}" takes ${size} bytes as stored (UTF-8 JSON); at most ${MAX_RULE_BYTES} are allowed. Use shorter values.`,
    );
  }
}

/** Throws InvalidArgumentError on "rule" if `rules` together take more than the limit. */
export function checkSubscriptionRulesSize(rules: readonly RuleRecord[], entityPath: string): void {
  const size = rules.reduce((sum, rule) => sum + storedRuleBytes(rule), 0);
  if (size > MAX_RULES_BYTES_PER_SUBSCRIPTION) {
    throw new InvalidArgumentError(
      "rule",
      `The rules of "${entityPath}" would take ${size} bytes as stored (UTF-8 JSON); at most ${MAX_RULES_BYTES_PER_SUBSCRIPTION} are allowed per subscription. Delete rules or use shorter ones.`,
      { entityPath },
    );
  }
}
