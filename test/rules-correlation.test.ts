/**
 * Correlation filters, rule validation, the stored record form and compileRules (semantics
 * §6), as a pure library without NATS or a broker.
 */
import { create, equals } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { PropertyValueSchema } from "../gen/ts/sessionbus/v1/message_pb.js";
import { type CorrelationFilter, type Rule, RuleSchema } from "../gen/ts/sessionbus/v1/topic_pb.js";
import { compileRules } from "../src/rules/message-filter.js";
import {
  DEFAULT_RULE_NAME,
  defaultRule,
  type RuleRecord,
  ruleFromProto,
  ruleToProto,
} from "../src/rules/rule-record.js";
import {
  message,
  type PropertyInput,
  property,
  refusal,
  sqlRule,
} from "./support/rule-fixtures.js";

type CorrelationInit = Partial<Omit<CorrelationFilter, "$typeName" | "applicationProperties">> & {
  properties?: Record<string, PropertyInput>;
};

function correlationRule({ properties = {}, ...fields }: CorrelationInit, name = "c1"): Rule {
  const applicationProperties = Object.fromEntries(
    Object.entries(properties).map(([key, value]) => [key, property(value)]),
  );
  return create(RuleSchema, {
    name,
    filter: { case: "correlationFilter", value: { ...fields, applicationProperties } },
  });
}

function correlationMatches(filter: CorrelationInit, target: ReturnType<typeof message>) {
  return compileRules([ruleFromProto(correlationRule(filter), "rule", 0)])(target);
}

const order = message(
  { color: "red", size: 5n, price: 2.5, urgent: true, photo: new Uint8Array([1, 2]) },
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

describe("correlation filter: system fields", () => {
  it.each([
    [{ correlationId: "c-1" }, true],
    [{ correlationId: "C-1" }, false],
    [{ messageId: "m-1" }, true],
    [{ messageId: "m-2" }, false],
    [{ to: "billing" }, true],
    [{ to: "Billing" }, false],
    [{ replyTo: "replies" }, true],
    [{ replyTo: "replies2" }, false],
    [{ subject: "invoice" }, true],
    [{ subject: "INVOICE" }, false],
    [{ sessionId: "s-1" }, true],
    [{ sessionId: "s-2" }, false],
    [{ replyToSessionId: "rs-1" }, true],
    [{ replyToSessionId: "rs" }, false],
    [{ contentType: "application/json" }, true],
    [{ contentType: "text/plain" }, false],
    [{ correlationId: "c-1", subject: "invoice", sessionId: "s-1" }, true],
    [{ correlationId: "c-1", subject: "receipt" }, false],
  ])("%o → %s", (filter, expected) => {
    expect(correlationMatches(filter, order)).toBe(expected);
  });

  it("never matches an unset session id with an empty one", () => {
    const noSession = message();
    const emptySession = message({}, { sessionId: "", replyToSessionId: "" });
    expect(correlationMatches({ sessionId: "" }, noSession)).toBe(false);
    expect(correlationMatches({ sessionId: "" }, emptySession)).toBe(true);
    expect(correlationMatches({ replyToSessionId: "" }, noSession)).toBe(false);
    expect(correlationMatches({ replyToSessionId: "" }, emptySession)).toBe(true);
  });

  it("compares the proto value of other fields, where unset is the empty string", () => {
    expect(correlationMatches({ correlationId: "" }, message())).toBe(true);
    expect(correlationMatches({ correlationId: "" }, order)).toBe(false);
  });
});

describe("correlation filter: application properties", () => {
  it.each<[Record<string, PropertyInput>, boolean]>([
    [{ color: "red" }, true],
    [{ color: "Red" }, false],
    [{ size: 5n }, true],
    [{ size: 5 }, true], // int 5 equals double 5.0
    [{ size: 6n }, false],
    [{ size: "5" }, false], // a string never equals a number
    [{ price: 2.5 }, true],
    [{ price: 2.25 }, false],
    [{ urgent: true }, true],
    [{ urgent: false }, false],
    [{ urgent: "true" }, false],
    [{ photo: new Uint8Array([1, 2]) }, true],
    [{ photo: new Uint8Array([1, 3]) }, false],
    [{ missing: "x" }, false],
    [{ color: "red", size: 5n }, true],
    [{ color: "red", size: 4n }, false],
  ])("%o → %s", (properties, expected) => {
    expect(correlationMatches({ properties }, order)).toBe(expected);
  });

  it("compares timestamps to the millisecond", () => {
    const sent = message({ at: new Date(1_700_000_000_123) });
    expect(correlationMatches({ properties: { at: new Date(1_700_000_000_123) } }, sent)).toBe(
      true,
    );
    expect(correlationMatches({ properties: { at: new Date(1_700_000_000_124) } }, sent)).toBe(
      false,
    );
  });

  it("combines fields and properties: all must match", () => {
    const filter = { subject: "invoice", properties: { color: "red" } };
    expect(correlationMatches(filter, order)).toBe(true);
    expect(correlationMatches(filter, message({ color: "red" }, { subject: "receipt" }))).toBe(
      false,
    );
    expect(correlationMatches(filter, message({ color: "blue" }, { subject: "invoice" }))).toBe(
      false,
    );
  });

  it("does not see the prototype of the property map", () => {
    const filter = { properties: { constructor: "x" } };
    expect(correlationMatches(filter, order)).toBe(false);
    expect(correlationMatches(filter, message({ constructor: "x" }))).toBe(true);
  });
});

describe("rule validation", () => {
  it.each(["r", "$Default", "a.b-c_d$e", "R2D2", "x".repeat(50)])("accepts the name %s", (name) => {
    expect(ruleFromProto(sqlRule("TRUE", name), "rule", 7).name).toBe(name);
  });

  it.each(["", "x".repeat(51), "a b", "ä", "a/b", "a*"])("refuses the name %j", (name) => {
    const refused = refusal(sqlRule("TRUE", name));
    expect(refused.field).toBe("rule.name");
    expect(refused.reason).toBe("INVALID_ARGUMENT");
    expect(refused.message).toBe(
      `rule.name "${name.length > 60 ? `${name.slice(0, 60)}…` : name}" is not a valid rule name: use 1 to 50 letters, digits, ".", "-", "_" or "$".`,
    );
  });

  it("refuses a missing rule and a rule without a filter", () => {
    expect(refusal(undefined)).toEqual({
      field: "rule",
      position: undefined,
      message:
        "rule is missing: give a rule with a name and one filter (sql_filter, correlation_filter, true_filter or false_filter).",
      reason: "INVALID_ARGUMENT",
    });
    expect(refusal(create(RuleSchema, { name: "empty" }))).toEqual({
      field: "rule.filter",
      position: undefined,
      message:
        'rule "empty" has no filter: set one of sql_filter, correlation_filter, true_filter or false_filter.',
      reason: "INVALID_ARGUMENT",
    });
  });

  it("refuses a correlation filter that compares nothing", () => {
    expect(refusal(correlationRule({}))).toMatchObject({
      field: "rule.correlation_filter",
      message:
        "rule.correlation_filter compares nothing: set at least one field or application property, or use true_filter to accept every message.",
    });
  });

  it("refuses a property without a value and a non-finite double", () => {
    const untyped = correlationRule({});
    if (untyped.filter.case !== "correlationFilter") throw new Error("unexpected filter");
    untyped.filter.value.applicationProperties.p = create(PropertyValueSchema);
    expect(refusal(untyped)).toMatchObject({
      field: 'rule.correlation_filter.application_properties["p"]',
      message:
        'rule.correlation_filter.application_properties["p"] has no value set; give it a string, int, double, bool, bytes or timestamp value.',
    });
    expect(refusal(correlationRule({ properties: { n: Number.NaN } }))).toMatchObject({
      field: 'rule.correlation_filter.application_properties["n"]',
      message:
        'rule.correlation_filter.application_properties["n"] is NaN; a correlation filter compares finite numbers only.',
    });
  });
});

describe("stored record and round trip", () => {
  const now = 1_700_000_000_000;

  function roundTrip(rule: Rule): { record: RuleRecord; back: Rule } {
    const record = ruleFromProto(rule, "rule", now);
    const stored = JSON.parse(JSON.stringify(record)) as RuleRecord;
    return { record, back: ruleToProto(stored) };
  }

  function withCreatedAt(rule: Rule): Rule {
    return create(RuleSchema, { ...rule, createdAt: timestampFromMs(now) });
  }

  it("keeps a SQL filter as written", () => {
    const rule = sqlRule("sys.Label = 'red' AND size > 3", "sql");
    const { record, back } = roundTrip(rule);
    expect(record).toEqual({
      name: "sql",
      filter: { kind: "sql", expression: "sys.Label = 'red' AND size > 3" },
      createdAt: now,
    });
    expect(equals(RuleSchema, back, withCreatedAt(rule))).toBe(true);
  });

  it("keeps a correlation filter with every field and property type exactly", () => {
    const rule = correlationRule(
      {
        correlationId: "c",
        messageId: "m",
        to: "t",
        replyTo: "r",
        subject: "s",
        sessionId: "",
        replyToSessionId: "rs",
        contentType: "ct",
        properties: {
          text: "x",
          count: 9223372036854775807n,
          ratio: 0.1,
          flag: false,
          raw: new Uint8Array([0, 255, 7]),
          at: new Date(1_234_567),
        },
      },
      "corr",
    );
    const { record, back } = roundTrip(rule);
    expect(record).toEqual({
      name: "corr",
      filter: {
        kind: "correlation",
        fields: {
          correlationId: "c",
          messageId: "m",
          to: "t",
          replyTo: "r",
          subject: "s",
          sessionId: "",
          replyToSessionId: "rs",
          contentType: "ct",
        },
        properties: {
          text: { string: "x" },
          count: { int: "9223372036854775807" },
          ratio: { double: 0.1 },
          flag: { bool: false },
          raw: { bytes: "AP8H" },
          at: { timestampMs: 1_234_567 },
        },
      },
      createdAt: now,
    });
    expect(equals(RuleSchema, back, withCreatedAt(rule))).toBe(true);
  });

  it("leaves unset correlation fields unset", () => {
    const { record, back } = roundTrip(correlationRule({ subject: "s" }));
    expect(record.filter).toEqual({
      kind: "correlation",
      fields: { subject: "s" },
      properties: {},
    });
    if (back.filter.case !== "correlationFilter") throw new Error("expected a correlation filter");
    expect(back.filter.value.sessionId).toBeUndefined();
    expect(back.filter.value.correlationId).toBeUndefined();
  });

  it.each([
    ["trueFilter", "true"],
    ["falseFilter", "false"],
  ] as const)("keeps a %s", (protoCase, kind) => {
    const rule = create(RuleSchema, { name: kind, filter: { case: protoCase, value: {} } });
    const { record, back } = roundTrip(rule);
    expect(record).toEqual({ name: kind, filter: { kind }, createdAt: now });
    expect(equals(RuleSchema, back, withCreatedAt(rule))).toBe(true);
  });

  it("makes the default rule accept everything", () => {
    expect(DEFAULT_RULE_NAME).toBe("$Default");
    expect(defaultRule(now)).toEqual({
      name: "$Default",
      filter: { kind: "true" },
      createdAt: now,
    });
    expect(compileRules([defaultRule(now)])(message())).toBe(true);
  });
});

describe("compileRules: a message matches when any rule does", () => {
  const red = message({ color: "red" });
  const blue = message({ color: "blue" });
  const rule = (filter: RuleRecord["filter"], name = "r"): RuleRecord => ({
    name,
    filter,
    createdAt: 0,
  });

  it("matches nothing without rules", () => {
    expect(compileRules([])(red)).toBe(false);
  });

  it("combines rules with OR", () => {
    const filter = compileRules([
      rule({ kind: "false" }, "never"),
      rule({ kind: "sql", expression: "color = 'red'" }, "reds"),
      rule({ kind: "correlation", fields: {}, properties: { size: { int: "3" } } }, "threes"),
    ]);
    expect(filter(red)).toBe(true);
    expect(filter(blue)).toBe(false);
    expect(filter(message({ color: "blue", size: 3n }))).toBe(true);
  });

  it("accepts everything with a true filter among others, nothing with only false filters", () => {
    const withTrue = compileRules([rule({ kind: "false" }), rule({ kind: "true" })]);
    expect(withTrue(blue)).toBe(true);
    const onlyFalse = compileRules([rule({ kind: "false" }), rule({ kind: "false" })]);
    expect(onlyFalse(red)).toBe(false);
  });

  it("reuses one compiled filter for many messages", () => {
    const filter = compileRules([rule({ kind: "sql", expression: "n % 2 = 0" })]);
    const matched = Array.from({ length: 10 }, (_, i) => filter(message({ n: BigInt(i) })));
    expect(matched).toEqual([true, false, true, false, true, false, true, false, true, false]);
  });

  it("refuses a stored SQL filter that does not parse (a corrupted record)", () => {
    expect(() => compileRules([rule({ kind: "sql", expression: "a =" }, "broken")])).toThrow(
      'The stored rule "broken" cannot be used: SQL filter error at position 4: expected a value after "=" but found the end of the expression.',
    );
  });
});
