/**
 * SQL filters of subscription rules (semantics §6), as a pure library: parse, validate and
 * evaluate against messages, without NATS or a broker. Every expression goes through
 * ruleFromProto (what the admin RPC stores) and compileRules (what the fan-out runs).
 */
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../src/broker/errors.js";
import { ruleFromProto } from "../src/rules/rule-record.js";
import {
  message,
  type PropertyInput,
  refusal,
  sqlMatches,
  sqlRule,
} from "./support/rule-fixtures.js";

const order = message(
  {
    color: "red",
    size: 5n,
    price: 2.5,
    urgent: true,
    zero: 0n,
    big: 9007199254740993n, // 2^53 + 1: not representable as a double
    "my prop": "spaced",
    name: "O'Brien",
    code: "ABC%1",
    nan: Number.NaN,
    photo: new Uint8Array([1, 2, 3]),
    copy: new Uint8Array([1, 2, 3]),
    other: new Uint8Array([1, 2, 4]),
    early: new Date(1_000),
    late: new Date(2_000),
  },
  {
    messageId: "m-1",
    correlationId: "c-1",
    subject: "invoice",
    to: "billing",
    replyTo: "replies",
    contentType: "application/json",
    sessionId: "s-1",
    replyToSessionId: "rs-1",
  },
);

/** Nothing set: proto3 defaults ("") and no session id. */
const bare = message();

function cases(table: Array<[string, boolean]>, target = order) {
  return it.each(table)("%s → %s", (expression, expected) => {
    expect(sqlMatches(expression, target)).toBe(expected);
  });
}

describe("comparison operators", () => {
  cases([
    ["color = 'red'", true],
    ["color = 'RED'", false],
    ["color <> 'blue'", true],
    ["color <> 'red'", false],
    ["color != 'red'", false],
    ["color != 'blue'", true],
    ["size > 4", true],
    ["size > 5", false],
    ["size >= 5", true],
    ["size >= 6", false],
    ["size < 5", false],
    ["size < 6", true],
    ["size <= 5", true],
    ["size <= 4", false],
    ["price = 2.5", true],
    ["price < 3", true],
    ["price > 2.5", false],
    ["color > 'blue'", true],
    ["color < 'blue'", false],
    ["urgent = TRUE", true],
    ["urgent = FALSE", false],
    ["urgent <> FALSE", true],
    ["early < late", true],
    ["late <= early", false],
    ["early = early", true],
    ["photo = copy", true],
    ["photo = other", false],
    ["photo <> other", true],
  ]);
});

describe("numbers: int64 is exact, int and double compare by value", () => {
  cases([
    ["size = 5.0", true],
    ["size = 5", true],
    ["price = 2.50", true],
    ["big = 9007199254740993", true],
    ["big = 9007199254740992", false],
    ["big > 9007199254740992.0", true],
    ["1.5e1 = 15", true],
    [".5 = 0.5", true],
    ["nan = nan", false],
    ["nan <> 1", true],
    ["nan < 1", false],
  ]);
});

describe("arithmetic", () => {
  cases([
    ["size + 1 = 6", true],
    ["size - 6 = -1", true],
    ["size * 2 = 10", true],
    ["size / 2 = 2", true], // int / int truncates, like int64 division
    ["size / 2.0 = 2.5", true],
    ["size % 3 = 2", true],
    ["price * 2 = 5", true],
    ["-size = -5", true],
    ["+size = 5", true],
    ["- -size = 5", true],
    ["2 + 3 * 4 = 14", true],
    ["(2 + 3) * 4 = 20", true],
    ["10 - 4 - 3 = 3", true],
    ["12 / 2 / 3 = 2", true],
    ["-7 % 3 = -1", true],
    ["size / zero IS NULL", true],
    ["size % zero IS NULL", true],
    ["9223372036854775807 + 1 IS NULL", true],
    ["big + 0 = big", true],
    ["color + 1 IS NULL", true],
  ]);
});

describe("AND, OR, NOT and precedence", () => {
  cases([
    ["color = 'red' AND size = 5", true],
    ["color = 'red' AND size = 6", false],
    ["color = 'blue' OR size = 5", true],
    ["color = 'blue' OR size = 6", false],
    // AND binds tighter than OR: red OR (size = 1 AND price = 0)
    ["color = 'red' OR size = 1 AND price = 0", true],
    ["(color = 'red' OR size = 1) AND price = 0", false],
    ["size = 1 AND price = 0 OR color = 'red'", true],
    ["size = 1 AND (price = 0 OR color = 'red')", false],
    ["NOT color = 'blue'", true],
    ["NOT color = 'red'", false],
    ["NOT NOT color = 'red'", true],
    // NOT binds tighter than OR and AND
    ["NOT color = 'red' OR size = 5", true],
    ["NOT (color = 'red' OR size = 5)", false],
    ["NOT color = 'blue' AND size = 5", true],
    ["urgent", true],
    ["NOT urgent", false],
    ["TRUE", true],
    ["FALSE", false],
    ["NOT FALSE", true],
    ["(((color = 'red')))", true],
    ["color = 'red' and size = 5 Or FALSE", true],
    ["color = 'red' AnD NoT size = 6", true],
  ]);
});

describe("three-valued logic: missing, NULL and mismatched types are unknown", () => {
  cases([
    ["missing = 1", false],
    ["NOT missing = 1", false],
    ["missing <> 1", false],
    ["missing = 1 OR color = 'red'", true],
    ["missing = 1 AND color = 'red'", false],
    // unknown AND FALSE is FALSE, so its negation matches
    ["NOT (missing = 1 AND color = 'blue')", true],
    // unknown AND TRUE stays unknown, and so does its negation
    ["NOT (missing = 1 AND color = 'red')", false],
    // unknown OR FALSE stays unknown
    ["NOT (missing = 1 OR color = 'blue')", false],
    ["NULL = NULL", false],
    ["NOT (NULL = NULL)", false],
    ["color = NULL", false],
    ["color = 5", false],
    ["NOT color = 5", false],
    ["color > 5", false],
    ["size = '5'", false],
    ["urgent = 1", false],
    ["urgent > FALSE", false],
    ["NOT (urgent > FALSE)", false],
    ["early = 1000", false],
    ["photo > other", false],
    ["color", false],
    ["NOT color", false],
    ["missing", false],
    ["NOT missing", false],
  ]);
});

describe("IN", () => {
  cases([
    ["color IN ('blue', 'red')", true],
    ["color IN ('blue')", false],
    ["color in ('blue', 'green')", false],
    ["color NOT IN ('blue', 'red')", false],
    ["color NOT IN ('blue', 'green')", true],
    ["size IN (1, 5.0)", true],
    ["size + 1 IN (size * 2, 6)", true],
    ["missing IN ('a')", false],
    ["missing NOT IN ('a')", false],
    ["color IN ('red', NULL)", true],
    ["color NOT IN ('blue', NULL)", false],
    ["color IN (5, 'red')", true],
  ]);
});

describe("LIKE", () => {
  cases([
    ["color LIKE 'r%'", true],
    ["color LIKE 'R%'", false],
    ["color LIKE '%e%'", true],
    ["color LIKE '_ed'", true],
    ["color LIKE '__d_'", false],
    ["color LIKE 'red'", true],
    ["color LIKE 're'", false],
    ["color LIKE '%'", true],
    ["color NOT LIKE 'b%'", true],
    ["color NOT LIKE 'r%'", false],
    ["code LIKE 'ABC!%_' ESCAPE '!'", true],
    ["code LIKE 'ABC!%' ESCAPE '!'", false],
    ["code LIKE 'ABC!_1' ESCAPE '!'", false],
    ["code LIKE 'ABC%'", true],
    ["code like 'abc%'", false],
    ["name LIKE 'O''B%'", true],
    ["sys.Subject LIKE 'inv.ice'", false], // "." is literal, not a regular-expression dot
    ["sys.To LIKE 'bill(ing)?'", false],
    ["sys.To LIKE 'bill%'", true],
    ["size LIKE '5'", false], // not a string: unknown
    ["NOT size LIKE '5'", false],
    ["missing LIKE '%'", false],
    ["missing NOT LIKE 'a'", false],
  ]);

  it("matches every character with _ and %, including newlines and emoji", () => {
    const text = message({ text: "a\nb😀" });
    expect(sqlMatches("text LIKE 'a_b_'", text)).toBe(true);
    expect(sqlMatches("text LIKE 'a%'", text)).toBe(true);
    expect(sqlMatches("text LIKE 'a_b__'", text)).toBe(false);
  });

  // Twenty "%a" then "b": a backtracking matcher tries ~n^20 splits of a string of a's.
  const pathological = `p LIKE '${"%a".repeat(20)}%b'`;

  it("answers a pattern of many % at once, without backtracking, on 64 and 10,000 characters", () => {
    for (const length of [64, 10_000]) {
      expect(sqlMatches(pathological, message({ p: "a".repeat(length) }))).toBe(false);
      expect(sqlMatches(pathological, message({ p: `${"a".repeat(length)}b` }))).toBe(true);
      expect(sqlMatches(pathological, message({ p: `${"a".repeat(19)}b` }))).toBe(false);
    }
  }, 20_000);

  cases(
    [
      ["p LIKE '%a%b%c'", true],
      ["p LIKE '%a%c%b'", false],
      ["p LIKE 'x%a%b%c'", false],
      ["p LIKE 'ab%bc%c'", false], // the start and end segments may not overlap
      ["p LIKE 'ab%b%c'", true],
      ["p LIKE 'a%%c'", true],
      ["p LIKE '%'", true],
      ["p LIKE '%%'", true],
      ["p LIKE '_%_'", true],
      ["p LIKE '%bbc'", true],
      ["p LIKE '%abc'", false],
      ["p LIKE 'abb%'", true],
      ["p LIKE 'abc%'", false],
      ["p LIKE '%bc_'", false],
      ["p LIKE '%_b_%'", true],
      ["p LIKE '%b!%%' ESCAPE '!'", false],
      ["p LIKE 'a%!_' ESCAPE '!'", false],
      ["p LIKE 'a%%' ESCAPE '%'", false], // "%%" is then a literal percent sign
    ],
    message({ p: "abbc" }),
  );

  it("treats the escape character as literal when doubled, and emoji as one character", () => {
    const target = message({ p: "50%😀!" });
    expect(sqlMatches("p LIKE '50!%_!!' ESCAPE '!'", target)).toBe(true);
    expect(sqlMatches("p LIKE '%!%%' ESCAPE '!'", target)).toBe(true);
    expect(sqlMatches("p LIKE '%😀_'", target)).toBe(true);
    expect(sqlMatches("p LIKE '%__'", target)).toBe(true);
    expect(sqlMatches("p LIKE '___'", target)).toBe(false);
    expect(sqlMatches("p LIKE '_____'", target)).toBe(true);
    expect(sqlMatches("p LIKE ''", message({ p: "" }))).toBe(true);
    expect(sqlMatches("p LIKE '_'", message({ p: "" }))).toBe(false);
  });
});

describe("IS NULL and EXISTS", () => {
  cases([
    ["missing IS NULL", true],
    ["missing IS NOT NULL", false],
    ["color IS NULL", false],
    ["color IS NOT NULL", true],
    ["color is not null", true],
    ["EXISTS(color)", true],
    ["EXISTS(missing)", false],
    ["NOT EXISTS(missing)", true],
    ["exists([my prop])", true],
    ["EXISTS(user.color)", true],
    ["EXISTS (sys.SessionId)", true],
    ["EXISTS(color) AND color = 'red'", true],
    ["sys.CorrelationId IS NOT NULL", true],
  ]);

  it("reads unset system properties as NULL, and an empty session id as a value", () => {
    expect(sqlMatches("sys.CorrelationId IS NULL", bare)).toBe(true);
    expect(sqlMatches("sys.Label IS NULL", bare)).toBe(true);
    expect(sqlMatches("sys.SessionId IS NULL", bare)).toBe(true);
    expect(sqlMatches("EXISTS(sys.SessionId)", bare)).toBe(false);
    expect(sqlMatches("sys.SessionId = ''", bare)).toBe(false);
    const emptySession = message({}, { sessionId: "" });
    expect(sqlMatches("sys.SessionId = ''", emptySession)).toBe(true);
    expect(sqlMatches("sys.SessionId IS NULL", emptySession)).toBe(false);
    expect(sqlMatches("EXISTS(sys.SessionId)", emptySession)).toBe(true);
  });
});

describe("system properties and property names", () => {
  cases([
    ["sys.MessageId = 'm-1'", true],
    ["sys.CorrelationId = 'c-1'", true],
    ["sys.SessionId = 's-1'", true],
    ["sys.ReplyTo = 'replies'", true],
    ["sys.ReplyToSessionId = 'rs-1'", true],
    ["sys.Label = 'invoice'", true],
    ["sys.Subject = 'invoice'", true],
    ["sys.label = 'invoice'", true],
    ["SYS.LABEL = 'invoice'", true],
    ["sys.Label = 'Invoice'", false],
    ["sys.To = 'billing'", true],
    ["sys.ContentType = 'application/json'", true],
    ["user.color = 'red'", true],
    ["USER.color = 'red'", true],
    ["user.[my prop] = 'spaced'", true],
    ["[my prop] = 'spaced'", true],
    ["[color] = 'red'", true],
    ["Color = 'red'", false], // application property names are case-sensitive
    ["'it''s' = 'it''s'", true],
    ["name = 'O''Brien'", true],
  ]);

  it("reads a bracketed name with ]] and keyword names in brackets", () => {
    const odd = message({ "a]b": "x", and: "y", "sys.Label": "z" });
    expect(sqlMatches("[a]]b] = 'x'", odd)).toBe(true);
    expect(sqlMatches("[and] = 'y'", odd)).toBe(true);
    expect(sqlMatches("user.and = 'y'", odd)).toBe(true);
    expect(sqlMatches("[sys.Label] = 'z'", odd)).toBe(true);
  });

  it("does not see the prototype of the property map", () => {
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expect(sqlMatches(`EXISTS(${name})`, order)).toBe(false);
      expect(sqlMatches(`${name} IS NULL`, order)).toBe(true);
    }
    expect(sqlMatches("[constructor] = 'x'", message({ constructor: "x" }))).toBe(true);
  });
});

describe("refused expressions: INVALID_ARGUMENT with the 1-based position", () => {
  const refused: Array<[string, number, string]> = [
    ["sys.Label = )", 13, 'expected a value after "=" but found ")"'],
    [
      "color = 'red' AND foo(1) = 2",
      19,
      'unknown function "foo"; the only function is EXISTS(property)',
    ],
    ["newid() = 'x'", 1, 'unknown function "newid"; the only function is EXISTS(property)'],
    [
      "size = 1 AND sys.Colour = 'x'",
      14,
      'unknown system property "sys.Colour"; known are sys.MessageId, sys.CorrelationId, sys.SessionId, sys.ReplyTo, sys.ReplyToSessionId, sys.Label, sys.Subject, sys.To, sys.ContentType',
    ],
    ["color = 'red", 9, "the string starting here has no closing quote (')"],
    ["", 1, "the expression is empty; write a condition such as sys.Label = 'red'"],
    ["   ", 1, "the expression is empty; write a condition such as sys.Label = 'red'"],
    ["color = 'red' AND", 18, 'expected a value after "AND" but found the end of the expression'],
    ["color IN ()", 11, 'expected a value after "(" but found ")"'],
    ["color IN 'a'", 10, 'expected "(" after "IN" but found the string \'a\''],
    ["color IN ('a' 'b')", 15, 'expected "," or ")" in the IN list but found the string \'b\''],
    [
      "color LIKE 5",
      12,
      "expected a pattern in single quotes after LIKE, such as 'abc%', but found the number 5",
    ],
    [
      "code LIKE 'a' ESCAPE '!!'",
      22,
      "expected one character in single quotes after ESCAPE, such as '!', but found the string '!!'",
    ],
    [
      "code LIKE 'ab!' ESCAPE '!'",
      11,
      'the LIKE pattern ends with its escape character "!"; put the character to escape after it',
    ],
    [
      "foo.bar = 1",
      1,
      'unknown scope "foo." (only sys. and user. exist); write a name containing a dot in brackets, such as [foo.name]',
    ],
    ["sys. = 1", 6, 'expected a property name after "sys." but found "="'],
    ["price + 1", 1, "expected a condition (such as a comparison) but found a number expression"],
    [
      "color = 'red' AND 'x'",
      19,
      "expected a condition (such as a comparison) but found a string expression",
    ],
    ["NOT 5", 5, "expected a condition (such as a comparison) but found a number expression"],
    ["'a' + 1 = 2", 1, '"+" works on numbers but was given a string'],
    ["-TRUE = 1", 2, '"-" works on numbers but was given a condition'],
    ["size * (size = 1) = 1", 9, '"*" works on numbers but was given a condition'],
    [
      'color = "red"',
      9,
      "unexpected character '\"'; write strings in single quotes ('text') and names with spaces in brackets ([my name])",
    ],
    ["color # 1", 7, 'unexpected character "#"'],
    ["size = 12abc", 10, 'unexpected character "a" in a number'],
    ["size = 1.2.3", 11, 'unexpected character "." in a number'],
    [
      "a = 1 b",
      7,
      'expected AND, OR or the end of the expression after the number 1 but found "b"',
    ],
    [
      "a = 1 = 2",
      7,
      'expected AND, OR or the end of the expression after the number 1 but found "="',
    ],
    ["(a = 1", 7, 'expected ")" after the number 1 but found the end of the expression'],
    ["a IS 5", 6, 'expected NULL after "IS" but found the number 5'],
    ["a NOT BETWEEN 1", 7, 'expected IN or LIKE after NOT but found "BETWEEN"'],
    [
      "EXISTS(1)",
      8,
      "expected a property name in EXISTS( ), such as EXISTS(color), but found the number 1",
    ],
    ["EXISTS color", 8, 'expected "(" after "EXISTS" but found "color"'],
    ["color = AND", 9, 'expected a value after "=" but found "AND"'],
    [
      "99999999999999999999 = 1",
      1,
      "the integer 99999999999999999999 is outside the 64-bit range; write it as a decimal (99999999999999999999.0)",
    ],
    ["x = [abc", 5, 'the name starting here has no closing "]"'],
    ["[] = 1", 1, 'empty property name "[]"'],
    // positions count characters: the emoji is one character (two UTF-16 units)
    ["[ä😀] = 1 AND foo(1)", 14, 'unknown function "foo"; the only function is EXISTS(property)'],
  ];

  it.each(refused)("%s → position %i", (expression, position, detail) => {
    expect(refusal(sqlRule(expression))).toEqual({
      field: "rule.sql_filter.expression",
      position,
      message: `SQL filter error at position ${position}: ${detail}.`,
      reason: "INVALID_ARGUMENT",
    });
  });

  it("accepts 1,024 characters and refuses 1,025 at position 1025", () => {
    const fits = `a = '${"x".repeat(1018)}'`;
    expect(fits.length).toBe(1024);
    expect(sqlMatches(fits, message({ a: "x".repeat(1018) }))).toBe(true);
    const tooLong = `a = '${"x".repeat(1019)}'`;
    expect(tooLong.length).toBe(1025);
    expect(refusal(sqlRule(tooLong))).toEqual({
      field: "rule.sql_filter.expression",
      position: 1025,
      message:
        "SQL filter error at position 1025: the expression is 1025 characters (Unicode code points) long, over the limit of 1024; shorten it.",
      reason: "INVALID_ARGUMENT",
    });
  });

  it("counts the length in characters, not UTF-16 units", () => {
    const emoji = `a = '${"😀".repeat(1018)}'`;
    expect(emoji.length).toBe(2042);
    expect(sqlMatches(emoji, message({ a: "😀".repeat(1018) }))).toBe(true);
  });

  it("names the request field it was given", () => {
    const thrown = (() => {
      try {
        ruleFromProto(sqlRule("a ="), "subscription.rule", 0);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(InvalidArgumentError);
    expect((thrown as InvalidArgumentError).subject).toEqual({
      field: "subscription.rule.sql_filter.expression",
      position: 4,
    });
  });
});

describe("evaluation never throws", () => {
  it("for the deepest nesting 1,024 characters allow", () => {
    const parentheses = `${"(".repeat(510)}TRUE${")".repeat(510)}`;
    expect(parentheses.length).toBe(1024);
    expect(sqlMatches(parentheses, bare)).toBe(true);
    const negations = `${"-".repeat(1018)}1 <> 0`;
    expect(negations.length).toBe(1024);
    expect(sqlMatches(negations, bare)).toBe(true);
    const nots = `${"NOT ".repeat(254)}TRUE`;
    expect(sqlMatches(nots, bare)).toBe(true);
  });

  const expressions = [
    "a = 1",
    "a + b > 2",
    "a / b = 1",
    "a % b = 0",
    "-a < 0",
    "a LIKE 'x%'",
    "a IN (b, 1, 'x', TRUE)",
    "a IS NULL OR NOT a = b",
    "EXISTS(a) AND sys.SessionId = a",
    "a * 9223372036854775807 > 1",
  ];
  const values: PropertyInput[] = [
    "x",
    0n,
    -9223372036854775808n,
    9223372036854775807n,
    0,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    -0,
    true,
    new Uint8Array(),
    new Date(0),
  ];

  it("for every pair of property types, and for empty messages", () => {
    const targets = [bare, message({}, { sessionId: "" })];
    for (const a of values) for (const b of values) targets.push(message({ a, b }));
    for (const expression of expressions) {
      for (const target of targets) {
        expect(typeof sqlMatches(expression, target)).toBe("boolean");
      }
    }
    expect(sqlMatches("a / b = 1", message({ a: 0n, b: 0n }))).toBe(false);
    expect(sqlMatches("a * 9223372036854775807 > 1", message({ a: 2n }))).toBe(false);
  });
});
