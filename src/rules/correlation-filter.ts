/**
 * Correlation filters: every field and application property the filter names must equal
 * the message's. Strings compare exactly (case-sensitive); properties compare by value
 * with the SQL filter's equality (int 5 equals double 5.0, "5" does not equal 5).
 */
import type { Message } from "../../gen/ts/sessionbus/v1/message_pb.js";
import type { RuleFilterRecord } from "./rule-record.js";
import { compareValues, fromPropertyValue } from "./sql-value.js";
import { storedPropertyToSql } from "./stored-property-value.js";

export type CorrelationFilterRecord = RuleFilterRecord & { kind: "correlation" };

export function compileCorrelationFilter(
  filter: CorrelationFilterRecord,
): (message: Message) => boolean {
  const checks: Array<(message: Message) => boolean> = [];
  for (const [field, expected] of Object.entries(filter.fields)) {
    if (expected === undefined) continue;
    const key = field as keyof CorrelationFilterRecord["fields"];
    // Unset optional fields (session ids) are undefined and so never equal "".
    checks.push((message) => message[key] === expected);
  }
  for (const [name, stored] of Object.entries(filter.properties)) {
    const expected = storedPropertyToSql(stored);
    checks.push((message) => {
      const properties = message.applicationProperties ?? {};
      if (!Object.hasOwn(properties, name)) return false;
      return compareValues("=", fromPropertyValue(properties[name]), expected) === true;
    });
  }
  return (message) => checks.every((check) => check(message));
}
