/**
 * The parsed form of a SQL filter. Every node keeps `start`, the UTF-16 offset of its first
 * character in the expression, so later checks can point at it.
 */
import type { LikePattern } from "./like-pattern.js";
import type { ArithmeticOperator, ComparisonOperator, SqlValue } from "./sql-value.js";

/** The message fields `sys.` names reach (sys.Label and sys.Subject are one). */
export type SystemProperty =
  | "messageId"
  | "correlationId"
  | "sessionId"
  | "replyTo"
  | "replyToSessionId"
  | "subject"
  | "to"
  | "contentType";

export type PropertyReference =
  | { scope: "sys"; field: SystemProperty; start: number }
  | { scope: "user"; name: string; start: number };

export type SqlNode =
  | { kind: "literal"; value: SqlValue; start: number }
  | { kind: "property"; property: PropertyReference; start: number }
  | { kind: "exists"; property: PropertyReference; start: number }
  | { kind: "and" | "or"; left: SqlNode; right: SqlNode; start: number }
  | { kind: "not"; operand: SqlNode; start: number }
  | { kind: "negate" | "plus"; operand: SqlNode; start: number }
  | {
      kind: "compare";
      operator: ComparisonOperator;
      left: SqlNode;
      right: SqlNode;
      start: number;
    }
  | {
      kind: "arithmetic";
      operator: ArithmeticOperator;
      left: SqlNode;
      right: SqlNode;
      start: number;
    }
  | { kind: "in"; operand: SqlNode; list: SqlNode[]; negated: boolean; start: number }
  | { kind: "like"; operand: SqlNode; pattern: LikePattern; negated: boolean; start: number }
  | { kind: "isNull"; operand: SqlNode; negated: boolean; start: number };

/** What a node yields, as far as the parser can tell without a message. */
export type StaticType = "condition" | "number" | "string" | "unknown";

export function staticType(node: SqlNode): StaticType {
  switch (node.kind) {
    case "literal":
      if (typeof node.value === "string") return "string";
      if (typeof node.value === "boolean") return "condition";
      return node.value === null ? "unknown" : "number";
    case "property":
      return "unknown";
    case "negate":
    case "plus":
    case "arithmetic":
      return "number";
    default:
      return "condition";
  }
}
