/**
 * Application property values as a rule record stores them in JSON: int64 as a decimal
 * string (exact), bytes as base64, timestamps as whole milliseconds.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type PropertyValue, PropertyValueSchema } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { InvalidArgumentError } from "../broker/errors.js";
import { type SqlValue, timestampToMs } from "./sql-value.js";

export type StoredPropertyValue =
  | { string: string }
  | { int: string /* int64 as decimal string */ }
  | { double: number }
  | { bool: boolean }
  | { bytes: string /* base64 */ }
  | { timestampMs: number };

/** Refuses what JSON cannot carry or a filter could never match (no type, NaN, ±Infinity). */
export function storedPropertyFromProto(
  value: PropertyValue | undefined,
  field: string,
): StoredPropertyValue {
  const typed = value?.value;
  switch (typed?.case) {
    case "stringValue":
      return { string: typed.value };
    case "intValue":
      return { int: typed.value.toString() };
    case "doubleValue":
      if (!Number.isFinite(typed.value)) {
        throw new InvalidArgumentError(
          field,
          `${field} is ${typed.value}; a correlation filter compares finite numbers only.`,
        );
      }
      return { double: typed.value };
    case "boolValue":
      return { bool: typed.value };
    case "bytesValue":
      return { bytes: Buffer.from(typed.value).toString("base64") };
    case "timestampValue":
      return { timestampMs: timestampToMs(typed.value) };
    default:
      throw new InvalidArgumentError(
        field,
        `${field} has no value set; give it a string, int, double, bool, bytes or timestamp value.`,
      );
  }
}

export function storedPropertyToProto(value: StoredPropertyValue): PropertyValue {
  return create(PropertyValueSchema, { value: protoCase(value) });
}

function protoCase(value: StoredPropertyValue): PropertyValue["value"] {
  if ("string" in value) return { case: "stringValue", value: value.string };
  if ("int" in value) return { case: "intValue", value: BigInt(value.int) };
  if ("double" in value) return { case: "doubleValue", value: value.double };
  if ("bool" in value) return { case: "boolValue", value: value.bool };
  if ("bytes" in value) {
    return { case: "bytesValue", value: new Uint8Array(Buffer.from(value.bytes, "base64")) };
  }
  return { case: "timestampValue", value: timestampFromMs(value.timestampMs) };
}

/** The stored value in the form filters compare (see sql-value.ts). */
export function storedPropertyToSql(value: StoredPropertyValue): SqlValue {
  if ("string" in value) return value.string;
  if ("int" in value) return BigInt(value.int);
  if ("double" in value) return value.double;
  if ("bool" in value) return value.bool;
  if ("bytes" in value) return new Uint8Array(Buffer.from(value.bytes, "base64"));
  return new Date(value.timestampMs);
}
