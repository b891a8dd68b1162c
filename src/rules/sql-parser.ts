/**
 * Recursive-descent parser for SQL filters (grammar in docs/architecture.md, "Subscription
 * rules"). Precedence, loosest first: OR, AND, NOT, one predicate (comparison, IN, LIKE,
 * IS NULL), + -, * / %, unary + -. Besides syntax it refuses what could never work (unknown
 * sys. property, unknown function, a number where a condition must be) so a stored filter
 * is always one that evaluates.
 */
import { codePointLength } from "../broker/limits/character-limits.js";
import { type LikePattern, parseLikePattern } from "./like-pattern.js";
import type { PropertyReference, SqlNode, SystemProperty } from "./sql-ast.js";
import { staticType } from "./sql-ast.js";
import { type SymbolText, type Token, tokenize } from "./sql-lexer.js";
import { SqlSyntaxError } from "./sql-syntax-error.js";
import type { ArithmeticOperator, ComparisonOperator } from "./sql-value.js";

/** At most this many characters (code points), as in Service Bus. */
export const MAX_SQL_EXPRESSION_LENGTH = 1024;

const SYSTEM_PROPERTIES: ReadonlyMap<string, SystemProperty> = new Map([
  ["messageid", "messageId"],
  ["correlationid", "correlationId"],
  ["sessionid", "sessionId"],
  ["replyto", "replyTo"],
  ["replytosessionid", "replyToSessionId"],
  ["label", "subject"],
  ["subject", "subject"],
  ["to", "to"],
  ["contenttype", "contentType"],
]);
const SYSTEM_PROPERTY_NAMES =
  "sys.MessageId, sys.CorrelationId, sys.SessionId, sys.ReplyTo, sys.ReplyToSessionId, sys.Label, sys.Subject, sys.To, sys.ContentType";

const KEYWORDS = new Set([
  "AND",
  "OR",
  "NOT",
  "IN",
  "LIKE",
  "ESCAPE",
  "IS",
  "NULL",
  "TRUE",
  "FALSE",
  "EXISTS",
]);

const COMPARISONS: ReadonlyMap<SymbolText, ComparisonOperator> = new Map([
  ["=", "="],
  ["<>", "<>"],
  ["!=", "<>"],
  ["<", "<"],
  ["<=", "<="],
  [">", ">"],
  [">=", ">="],
]);

/** Parses and checks a SQL filter; throws SqlSyntaxError naming the position. */
export function parseSqlFilter(expression: string): SqlNode {
  const length = codePointLength(expression);
  if (length > MAX_SQL_EXPRESSION_LENGTH) {
    const limitIndex = [...expression].slice(0, MAX_SQL_EXPRESSION_LENGTH).join("").length;
    throw new SqlSyntaxError(
      expression,
      limitIndex,
      `the expression is ${length} characters (Unicode code points) long, over the limit of ${MAX_SQL_EXPRESSION_LENGTH}; shorten it`,
    );
  }
  if (expression.trim() === "") {
    throw new SqlSyntaxError(
      expression,
      0,
      "the expression is empty; write a condition such as sys.Label = 'red'",
    );
  }
  return new Parser(expression).parseFilter();
}

class Parser {
  private readonly tokens: Token[];
  private index = 0;

  constructor(private readonly expression: string) {
    this.tokens = tokenize(expression);
  }

  parseFilter(): SqlNode {
    const node = this.parseOr();
    if (this.peek().kind !== "end") {
      throw this.error(
        this.peek(),
        `expected AND, OR or the end of the expression after ${this.describe(this.previous())} but found ${this.describe(this.peek())}`,
      );
    }
    this.requireCondition(node);
    return node;
  }

  private parseOr(): SqlNode {
    let left = this.parseAnd();
    while (this.acceptWord("OR")) {
      const right = this.parseAnd();
      this.requireCondition(left);
      this.requireCondition(right);
      left = { kind: "or", left, right, start: left.start };
    }
    return left;
  }

  private parseAnd(): SqlNode {
    let left = this.parseNot();
    while (this.acceptWord("AND")) {
      const right = this.parseNot();
      this.requireCondition(left);
      this.requireCondition(right);
      left = { kind: "and", left, right, start: left.start };
    }
    return left;
  }

  private parseNot(): SqlNode {
    const token = this.peek();
    if (!this.acceptWord("NOT")) return this.parsePredicate();
    const operand = this.parseNot();
    this.requireCondition(operand);
    return { kind: "not", operand, start: token.start };
  }

  private parsePredicate(): SqlNode {
    const left = this.parseAdditive();
    const token = this.peek();
    const comparison = token.kind === "symbol" ? COMPARISONS.get(token.text) : undefined;
    if (comparison !== undefined) {
      this.index++;
      const right = this.parseAdditive();
      return { kind: "compare", operator: comparison, left, right, start: left.start };
    }
    if (this.acceptWord("IS")) {
      const negated = this.acceptWord("NOT");
      if (!this.acceptWord("NULL")) {
        throw this.error(
          this.peek(),
          `expected NULL after ${this.describe(this.previous())} but found ${this.describe(this.peek())}`,
        );
      }
      return { kind: "isNull", operand: left, negated, start: left.start };
    }
    const negated = this.acceptWord("NOT");
    if (this.acceptWord("IN")) return this.parseIn(left, negated);
    if (this.acceptWord("LIKE")) return this.parseLike(left, negated);
    if (negated) {
      throw this.error(
        this.peek(),
        `expected IN or LIKE after NOT but found ${this.describe(this.peek())}`,
      );
    }
    return left;
  }

  private parseIn(operand: SqlNode, negated: boolean): SqlNode {
    this.expectSymbol("(");
    const list = [this.parseAdditive()];
    while (this.acceptSymbol(",")) list.push(this.parseAdditive());
    if (!this.acceptSymbol(")")) {
      throw this.error(
        this.peek(),
        `expected "," or ")" in the IN list but found ${this.describe(this.peek())}`,
      );
    }
    return { kind: "in", operand, list, negated, start: operand.start };
  }

  private parseLike(operand: SqlNode, negated: boolean): SqlNode {
    const patternToken = this.peek();
    if (patternToken.kind !== "string") {
      throw this.error(
        patternToken,
        `expected a pattern in single quotes after LIKE, such as 'abc%', but found ${this.describe(patternToken)}`,
      );
    }
    this.index++;
    let escapeCharacter: string | undefined;
    if (this.acceptWord("ESCAPE")) {
      const escapeToken = this.peek();
      if (escapeToken.kind !== "string" || [...escapeToken.value].length !== 1) {
        throw this.error(
          escapeToken,
          `expected one character in single quotes after ESCAPE, such as '!', but found ${this.describe(escapeToken)}`,
        );
      }
      this.index++;
      escapeCharacter = escapeToken.value;
    }
    const pattern = this.likePattern(patternToken, escapeCharacter);
    return { kind: "like", operand, pattern, negated, start: operand.start };
  }

  /** The pattern read: % any run, _ one character, escape = the next character literally. */
  private likePattern(
    token: Token & { kind: "string" },
    escapeCharacter: string | undefined,
  ): LikePattern {
    const pattern = parseLikePattern(token.value, escapeCharacter);
    if (pattern === undefined) {
      throw this.error(
        token,
        `the LIKE pattern ends with its escape character "${escapeCharacter}"; put the character to escape after it`,
      );
    }
    return pattern;
  }

  private parseAdditive(): SqlNode {
    let left = this.parseMultiplicative();
    for (;;) {
      const operator = this.acceptOperator("+", "-");
      if (operator === undefined) return left;
      const right = this.parseMultiplicative();
      this.requireNumber(left, operator);
      this.requireNumber(right, operator);
      left = { kind: "arithmetic", operator, left, right, start: left.start };
    }
  }

  private parseMultiplicative(): SqlNode {
    let left = this.parseUnary();
    for (;;) {
      const operator = this.acceptOperator("*", "/", "%");
      if (operator === undefined) return left;
      const right = this.parseUnary();
      this.requireNumber(left, operator);
      this.requireNumber(right, operator);
      left = { kind: "arithmetic", operator, left, right, start: left.start };
    }
  }

  private parseUnary(): SqlNode {
    const token = this.peek();
    const operator = this.acceptOperator("+", "-");
    if (operator === undefined) return this.parsePrimary();
    const operand = this.parseUnary();
    this.requireNumber(operand, operator);
    return { kind: operator === "-" ? "negate" : "plus", operand, start: token.start };
  }

  private parsePrimary(): SqlNode {
    const token = this.peek();
    switch (token.kind) {
      case "string":
      case "integer":
      case "decimal":
        this.index++;
        return { kind: "literal", value: token.value, start: token.start };
      case "bracketed":
        return this.parsePropertyNode();
      case "symbol":
        if (token.text === "(") {
          this.index++;
          const inner = this.parseOr();
          this.expectSymbol(")");
          return inner;
        }
        break;
      case "word":
        return this.parseWord(token);
      case "end":
        break;
    }
    throw this.expectedValue(token);
  }

  private parseWord(token: Token & { kind: "word" }): SqlNode {
    const keyword = token.text.toUpperCase();
    if (keyword === "TRUE" || keyword === "FALSE" || keyword === "NULL") {
      this.index++;
      const value = keyword === "NULL" ? null : keyword === "TRUE";
      return { kind: "literal", value, start: token.start };
    }
    if (keyword === "EXISTS") {
      this.index++;
      this.expectSymbol("(");
      const next = this.peek();
      if (!this.startsProperty(next)) {
        throw this.error(
          next,
          `expected a property name in EXISTS( ), such as EXISTS(color), but found ${this.describe(next)}`,
        );
      }
      const property = this.parseProperty();
      this.expectSymbol(")");
      return { kind: "exists", property, start: token.start };
    }
    if (KEYWORDS.has(keyword)) throw this.expectedValue(token);
    const next = this.tokens[this.index + 1];
    if (next?.kind === "symbol" && next.text === "(") {
      throw this.error(
        token,
        `unknown function "${token.text}"; the only function is EXISTS(property)`,
      );
    }
    return this.parsePropertyNode();
  }

  private parsePropertyNode(): SqlNode {
    const property = this.parseProperty();
    return { kind: "property", property, start: property.start };
  }

  /** name, [name], sys.Name, user.name (scopes case-insensitive). */
  private parseProperty(): PropertyReference {
    const first = this.peek();
    if (first.kind !== "word" && first.kind !== "bracketed") throw this.expectedValue(first);
    this.index++;
    if (!this.acceptSymbol(".")) return { scope: "user", name: first.text, start: first.start };
    const scope = first.text.toLowerCase();
    if (scope !== "sys" && scope !== "user") {
      throw this.error(
        first,
        `unknown scope "${first.text}." (only sys. and user. exist); write a name containing a dot in brackets, such as [${first.text}.name]`,
      );
    }
    const name = this.peek();
    if (name.kind !== "word" && name.kind !== "bracketed") {
      throw this.error(
        name,
        `expected a property name after "${first.text}." but found ${this.describe(name)}`,
      );
    }
    this.index++;
    if (scope === "user") return { scope: "user", name: name.text, start: first.start };
    const field = SYSTEM_PROPERTIES.get(name.text.toLowerCase());
    if (field === undefined) {
      throw this.error(
        first,
        `unknown system property "${first.text}.${name.text}"; known are ${SYSTEM_PROPERTY_NAMES}`,
      );
    }
    return { scope: "sys", field, start: first.start };
  }

  private startsProperty(token: Token): boolean {
    if (token.kind === "bracketed") return true;
    return token.kind === "word" && !KEYWORDS.has(token.text.toUpperCase());
  }

  private requireCondition(node: SqlNode): void {
    const type = staticType(node);
    if (type === "number" || type === "string") {
      throw this.error(
        node,
        `expected a condition (such as a comparison) but found a ${type} expression`,
      );
    }
  }

  private requireNumber(node: SqlNode, operator: string): void {
    const type = staticType(node);
    if (type === "condition" || type === "string") {
      throw this.error(node, `"${operator}" works on numbers but was given a ${type}`);
    }
  }

  private acceptWord(keyword: string): boolean {
    const token = this.peek();
    if (token.kind === "word" && token.text.toUpperCase() === keyword) {
      this.index++;
      return true;
    }
    return false;
  }

  private acceptSymbol(symbol: SymbolText): boolean {
    const token = this.peek();
    if (token.kind === "symbol" && token.text === symbol) {
      this.index++;
      return true;
    }
    return false;
  }

  private acceptOperator<T extends ArithmeticOperator>(...operators: T[]): T | undefined {
    const token = this.peek();
    const operator = operators.find((o) => token.kind === "symbol" && token.text === o);
    if (operator !== undefined) this.index++;
    return operator;
  }

  private expectSymbol(symbol: SymbolText): void {
    if (this.acceptSymbol(symbol)) return;
    throw this.error(
      this.peek(),
      `expected "${symbol}" after ${this.describe(this.previous())} but found ${this.describe(this.peek())}`,
    );
  }

  private expectedValue(token: Token): SqlSyntaxError {
    const after = this.index > 0 ? ` after ${this.describe(this.previous())}` : "";
    return this.error(token, `expected a value${after} but found ${this.describe(token)}`);
  }

  private peek(): Token {
    return this.tokens[this.index] ?? { kind: "end", start: this.expression.length };
  }

  private previous(): Token {
    return this.tokens[this.index - 1] ?? { kind: "end", start: 0 };
  }

  private describe(token: Token): string {
    switch (token.kind) {
      case "end":
        return "the end of the expression";
      case "string":
        return `the string '${abbreviate(token.value)}'`;
      case "integer":
      case "decimal":
        return `the number ${token.text}`;
      case "bracketed":
        return `"[${abbreviate(token.text)}]"`;
      default:
        return `"${abbreviate(token.text)}"`;
    }
  }

  private error(at: { start: number }, detail: string): SqlSyntaxError {
    return new SqlSyntaxError(this.expression, at.start, detail);
  }
}

function abbreviate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
