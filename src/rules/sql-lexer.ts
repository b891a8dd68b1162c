/**
 * Splits a SQL filter expression into tokens. Keywords are ordinary words here (the parser
 * compares them case-insensitively), so `[and]` can still name a property.
 */

import { SqlSyntaxError } from "./sql-syntax-error.js";
import { isInt64 } from "./sql-value.js";

export type SymbolText =
  | "="
  | "<>"
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "+"
  | "-"
  | "*"
  | "/"
  | "%"
  | "("
  | ")"
  | ","
  | ".";

/** `start` is the UTF-16 offset of the token's first character. */
export type Token =
  | { kind: "word"; text: string; start: number }
  | { kind: "bracketed"; text: string; start: number }
  | { kind: "string"; value: string; start: number }
  | { kind: "integer"; value: bigint; text: string; start: number }
  | { kind: "decimal"; value: number; text: string; start: number }
  | { kind: "symbol"; text: SymbolText; start: number }
  | { kind: "end"; start: number };

const TWO_CHARACTER_SYMBOLS = new Set(["<>", "!=", "<=", ">="]);
const ONE_CHARACTER_SYMBOLS = new Set("=<>+-*/%(),.");
const WORD_START = /[\p{L}_]/u;
const WORD_PART = /[\p{L}\p{N}_]/u;
const DIGIT = /[0-9]/;
const NUMBER = /[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?/y;
const WHITESPACE = /\s/;

export function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < expression.length) {
    const char = expression.charAt(index);
    if (WHITESPACE.test(char)) {
      index++;
      continue;
    }
    const token = readToken(expression, index);
    tokens.push(token.token);
    index = token.next;
  }
  tokens.push({ kind: "end", start: expression.length });
  return tokens;
}

function readToken(expression: string, start: number): { token: Token; next: number } {
  const char = expression.charAt(start);
  const pair = expression.slice(start, start + 2);
  if (TWO_CHARACTER_SYMBOLS.has(pair)) {
    return { token: { kind: "symbol", text: pair as SymbolText, start }, next: start + 2 };
  }
  if (char === "." && DIGIT.test(expression.charAt(start + 1))) {
    return readNumber(expression, start);
  }
  if (ONE_CHARACTER_SYMBOLS.has(char)) {
    return { token: { kind: "symbol", text: char as SymbolText, start }, next: start + 1 };
  }
  if (char === "'") return readString(expression, start);
  if (char === "[") return readBracketed(expression, start);
  if (DIGIT.test(char)) return readNumber(expression, start);
  const codePoint = String.fromCodePoint(expression.codePointAt(start) ?? 0);
  if (WORD_START.test(codePoint)) return readWord(expression, start);
  if (char === '"') {
    throw new SqlSyntaxError(
      expression,
      start,
      `unexpected character '"'; write strings in single quotes ('text') and names with spaces in brackets ([my name])`,
    );
  }
  throw new SqlSyntaxError(expression, start, `unexpected character "${codePoint}"`);
}

function readWord(expression: string, start: number): { token: Token; next: number } {
  let next = start;
  for (const codePoint of expression.slice(start)) {
    if (!WORD_PART.test(codePoint)) break;
    next += codePoint.length;
  }
  return { token: { kind: "word", text: expression.slice(start, next), start }, next };
}

/** 'text' with '' standing for one quote. */
function readString(expression: string, start: number): { token: Token; next: number } {
  let value = "";
  let index = start + 1;
  for (;;) {
    const close = expression.indexOf("'", index);
    if (close < 0) {
      throw new SqlSyntaxError(
        expression,
        start,
        "the string starting here has no closing quote (')",
      );
    }
    value += expression.slice(index, close);
    if (expression.charAt(close + 1) !== "'") {
      return { token: { kind: "string", value, start }, next: close + 1 };
    }
    value += "'";
    index = close + 2;
  }
}

/** [any name] with ]] standing for one closing bracket. */
function readBracketed(expression: string, start: number): { token: Token; next: number } {
  let text = "";
  let index = start + 1;
  for (;;) {
    const close = expression.indexOf("]", index);
    if (close < 0) {
      throw new SqlSyntaxError(expression, start, 'the name starting here has no closing "]"');
    }
    text += expression.slice(index, close);
    if (expression.charAt(close + 1) !== "]") {
      if (text === "") throw new SqlSyntaxError(expression, start, 'empty property name "[]"');
      return { token: { kind: "bracketed", text, start }, next: close + 1 };
    }
    text += "]";
    index = close + 2;
  }
}

function readNumber(expression: string, start: number): { token: Token; next: number } {
  NUMBER.lastIndex = start;
  const text = NUMBER.exec(expression)?.[0] ?? "";
  const next = start + text.length;
  const following = String.fromCodePoint(expression.codePointAt(next) ?? 32);
  if (WORD_PART.test(following) || following === ".") {
    throw new SqlSyntaxError(expression, next, `unexpected character "${following}" in a number`);
  }
  if (/^[0-9]+$/.test(text)) {
    const value = BigInt(text);
    if (!isInt64(value)) {
      throw new SqlSyntaxError(
        expression,
        start,
        `the integer ${text} is outside the 64-bit range; write it as a decimal (${text}.0)`,
      );
    }
    return { token: { kind: "integer", value, text, start }, next };
  }
  const value = Number(text);
  if (!Number.isFinite(value)) {
    throw new SqlSyntaxError(expression, start, `the number ${text} is too large`);
  }
  return { token: { kind: "decimal", value, text, start }, next };
}
