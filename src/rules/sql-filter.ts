/**
 * Turns a parsed SQL filter into a closure tree evaluated per message. Evaluation follows
 * SQL's three-valued logic: a missing property, NULL or a type mismatch is unknown (null),
 * and a message matches only when the whole expression is TRUE.
 */
import type { Message } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { likeMatches } from "./like-pattern.js";
import type { PropertyReference, SqlNode, SystemProperty } from "./sql-ast.js";
import { parseSqlFilter } from "./sql-parser.js";
import {
  applyArithmetic,
  compareValues,
  fromPropertyValue,
  isNumeric,
  negate,
  type SqlValue,
} from "./sql-value.js";

type Evaluator = (message: Message) => SqlValue;

/** Parses once; throws SqlSyntaxError for an expression that cannot be stored. */
export function compileSqlFilter(expression: string): (message: Message) => boolean {
  const evaluate = compileNode(parseSqlFilter(expression));
  return (message) => {
    try {
      return evaluate(message) === true;
    } catch {
      // Unreachable by design (every operation is total); a message never breaks fan-out.
      return false;
    }
  };
}

function compileNode(node: SqlNode): Evaluator {
  switch (node.kind) {
    case "literal": {
      const value = node.value;
      return () => value;
    }
    case "property":
      return propertyReader(node.property);
    case "exists": {
      const read = propertyReader(node.property);
      const { property } = node;
      if (property.scope === "sys") return (message) => read(message) !== null;
      return (message) => Object.hasOwn(message.applicationProperties ?? {}, property.name);
    }
    case "and": {
      const left = compileNode(node.left);
      const right = compileNode(node.right);
      return (message) => and(asLogic(left(message)), asLogic(right(message)));
    }
    case "or": {
      const left = compileNode(node.left);
      const right = compileNode(node.right);
      return (message) => or(asLogic(left(message)), asLogic(right(message)));
    }
    case "not": {
      const operand = compileNode(node.operand);
      return (message) => not(asLogic(operand(message)));
    }
    case "negate": {
      const operand = compileNode(node.operand);
      return (message) => negate(operand(message));
    }
    case "plus": {
      const operand = compileNode(node.operand);
      return (message) => {
        const value = operand(message);
        return isNumeric(value) ? value : null;
      };
    }
    case "compare": {
      const { operator } = node;
      const left = compileNode(node.left);
      const right = compileNode(node.right);
      return (message) => compareValues(operator, left(message), right(message));
    }
    case "arithmetic": {
      const { operator } = node;
      const left = compileNode(node.left);
      const right = compileNode(node.right);
      return (message) => applyArithmetic(operator, left(message), right(message));
    }
    case "in": {
      const operand = compileNode(node.operand);
      const list = node.list.map(compileNode);
      const negated = node.negated;
      return (message) => {
        const result = isIn(operand(message), list, message);
        return negated ? not(result) : result;
      };
    }
    case "like": {
      const operand = compileNode(node.operand);
      const { pattern, negated } = node;
      return (message) => {
        const value = operand(message);
        if (typeof value !== "string") return null;
        const matched = likeMatches(pattern, value);
        return negated ? !matched : matched;
      };
    }
    case "isNull": {
      const operand = compileNode(node.operand);
      const negated = node.negated;
      return (message) => (operand(message) === null) !== negated;
    }
  }
}

/** `x IN (a, b)`: TRUE if some item equals x, unknown if none does but one is unknown. */
function isIn(value: SqlValue, list: Evaluator[], message: Message): boolean | null {
  let result: boolean | null = false;
  for (const item of list) {
    const equal = compareValues("=", value, item(message));
    if (equal === true) return true;
    if (equal === null) result = null;
  }
  return result;
}

/**
 * Proto3 leaves unset strings empty: the always-present system properties read "" as NULL,
 * while session ids are optional fields, so "" there is a real (empty) session id.
 */
function propertyReader(property: PropertyReference): Evaluator {
  if (property.scope === "user") {
    const { name } = property;
    return (message) => {
      const properties = message.applicationProperties ?? {};
      return Object.hasOwn(properties, name) ? fromPropertyValue(properties[name]) : null;
    };
  }
  const field: SystemProperty = property.field;
  if (field === "sessionId" || field === "replyToSessionId") {
    return (message) => message[field] ?? null;
  }
  return (message) => message[field] || null;
}

function asLogic(value: SqlValue): boolean | null {
  return typeof value === "boolean" ? value : null;
}

function and(left: boolean | null, right: boolean | null): boolean | null {
  if (left === false || right === false) return false;
  return left === true && right === true ? true : null;
}

function or(left: boolean | null, right: boolean | null): boolean | null {
  if (left === true || right === true) return true;
  return left === false && right === false ? false : null;
}

function not(value: boolean | null): boolean | null {
  return value === null ? null : !value;
}
