/**
 * The values a rule compares: what an application property or a system property holds, or
 * what a SQL literal or arithmetic produces. `null` is SQL's unknown (a missing property,
 * NULL, or an operation without a meaningful result); it never throws.
 */
import type { PropertyValue } from "../../gen/ts/sessionbus/v1/message_pb.js";

/** int64 values are bigint (exact), doubles are number, timestamps are Date. */
export type SqlValue = null | string | bigint | number | boolean | Uint8Array | Date;

export type ComparisonOperator = "=" | "<>" | "<" | "<=" | ">" | ">=";
export type ArithmeticOperator = "+" | "-" | "*" | "/" | "%";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function isInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}

/** A protobuf Timestamp as whole milliseconds (sub-millisecond digits dropped). */
export function timestampToMs(timestamp: { seconds: bigint; nanos: number }): number {
  return Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1_000_000);
}

export function fromPropertyValue(property: PropertyValue | undefined): SqlValue {
  const value = property?.value;
  switch (value?.case) {
    case "stringValue":
    case "intValue":
    case "doubleValue":
    case "boolValue":
    case "bytesValue":
      return value.value;
    case "timestampValue":
      return new Date(timestampToMs(value.value));
    default:
      return null;
  }
}

/**
 * Three-valued comparison. Numbers compare by value across int and double (int 5 = double
 * 5.0); strings compare ordinally and case-sensitively; booleans and bytes support only
 * = and <>; timestamps compare by instant. NULL or a type mismatch gives unknown (null).
 */
export function compareValues(
  operator: ComparisonOperator,
  left: SqlValue,
  right: SqlValue,
): boolean | null {
  if (left === null || right === null) return null;
  if (isNumeric(left) && isNumeric(right)) {
    const order = compareNumbers(left, right);
    // NaN is unordered: it equals nothing and differs from everything.
    if (order === undefined) return operator === "<>";
    return applyOrder(operator, order);
  }
  if (typeof left === "string" && typeof right === "string") {
    return applyOrder(operator, left < right ? -1 : left > right ? 1 : 0);
  }
  if (left instanceof Date && right instanceof Date) {
    return applyOrder(operator, Math.sign(left.getTime() - right.getTime()));
  }
  if (typeof left === "boolean" && typeof right === "boolean") {
    return equalityOnly(operator, left === right);
  }
  if (left instanceof Uint8Array && right instanceof Uint8Array) {
    return equalityOnly(operator, bytesEqual(left, right));
  }
  return null;
}

/** Arithmetic; int64 stays exact (overflow and division by zero are unknown). */
export function applyArithmetic(
  operator: ArithmeticOperator,
  left: SqlValue,
  right: SqlValue,
): SqlValue {
  if (!isNumeric(left) || !isNumeric(right)) return null;
  if (typeof left === "bigint" && typeof right === "bigint") {
    if ((operator === "/" || operator === "%") && right === 0n) return null;
    const result = integerArithmetic(operator, left, right);
    return isInt64(result) ? result : null;
  }
  const a = Number(left);
  const b = Number(right);
  switch (operator) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      return a / b;
    case "%":
      return a % b;
  }
}

export function negate(value: SqlValue): SqlValue {
  if (typeof value === "bigint") return isInt64(-value) ? -value : null;
  if (typeof value === "number") return -value;
  return null;
}

export function isNumeric(value: SqlValue): value is bigint | number {
  return typeof value === "bigint" || typeof value === "number";
}

function integerArithmetic(operator: ArithmeticOperator, a: bigint, b: bigint): bigint {
  switch (operator) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      return a / b; // truncates toward zero, as int64 division does
    case "%":
      return a % b;
  }
}

/** JavaScript compares bigint with number by exact mathematical value. */
function compareNumbers(a: bigint | number, b: bigint | number): number | undefined {
  if (Number.isNaN(a) || Number.isNaN(b)) return undefined;
  return a < b ? -1 : a > b ? 1 : 0;
}

function applyOrder(operator: ComparisonOperator, order: number): boolean {
  switch (operator) {
    case "=":
      return order === 0;
    case "<>":
      return order !== 0;
    case "<":
      return order < 0;
    case "<=":
      return order <= 0;
    case ">":
      return order > 0;
    case ">=":
      return order >= 0;
  }
}

function equalityOnly(operator: ComparisonOperator, equal: boolean): boolean | null {
  if (operator === "=") return equal;
  if (operator === "<>") return !equal;
  return null;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
