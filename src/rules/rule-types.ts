/** The stored form of subscription rules, shared by rule-record.ts and rule-limits.ts. */
import type { StoredPropertyValue } from "./stored-property-value.js";

/** The message fields a correlation filter can compare, in camelCase. */
export const CORRELATION_FIELDS = [
  "correlationId",
  "messageId",
  "to",
  "replyTo",
  "subject",
  "sessionId",
  "replyToSessionId",
  "contentType",
] as const;
export type CorrelationField = (typeof CORRELATION_FIELDS)[number];

export type RuleFilterRecord =
  | { kind: "sql"; expression: string }
  | {
      kind: "correlation";
      fields: Partial<Record<CorrelationField, string>>;
      properties: Record<string, StoredPropertyValue>;
    }
  | { kind: "true" }
  | { kind: "false" };

export interface RuleRecord {
  name: string;
  filter: RuleFilterRecord;
  createdAt: number;
}
