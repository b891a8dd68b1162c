/**
 * The predicate a topic's fan-out asks per subscription: does this message belong here?
 */
import type { Message } from "../../gen/ts/sessionbus/v1/message_pb.js";
import { InvalidArgumentError } from "../broker/errors.js";
import { compileCorrelationFilter } from "./correlation-filter.js";
import type { RuleFilterRecord, RuleRecord } from "./rule-record.js";
import { compileSqlFilter } from "./sql-filter.js";
import { SqlSyntaxError } from "./sql-syntax-error.js";

export type MessageFilter = (message: Message) => boolean;

/**
 * A subscription gets a message when ANY of its rules matches; no rules: nothing matches.
 * Compiles once (each SQL expression is parsed here, not per message) and returns a
 * predicate that never throws. Throws InvalidArgumentError only for a record that
 * ruleFromProto would have refused (a corrupted registry entry).
 */
export function compileRules(rules: RuleRecord[]): MessageFilter {
  const filters = rules.map((rule) => compileFilter(rule));
  if (filters.length === 0) return () => false;
  if (filters.some((filter) => filter === ACCEPT_ALL)) return ACCEPT_ALL;
  const active = filters.filter((filter) => filter !== REJECT_ALL);
  if (active.length === 0) return REJECT_ALL;
  if (active.length === 1) return active[0] ?? REJECT_ALL;
  return (message) => active.some((filter) => filter(message));
}

const ACCEPT_ALL: MessageFilter = () => true;
const REJECT_ALL: MessageFilter = () => false;

function compileFilter(rule: RuleRecord): MessageFilter {
  const filter: RuleFilterRecord = rule.filter;
  switch (filter.kind) {
    case "true":
      return ACCEPT_ALL;
    case "false":
      return REJECT_ALL;
    case "correlation":
      return compileCorrelationFilter(filter);
    case "sql":
      try {
        return compileSqlFilter(filter.expression);
      } catch (error) {
        if (!(error instanceof SqlSyntaxError)) throw error;
        throw new InvalidArgumentError(
          "rule.sql_filter.expression",
          `The stored rule "${rule.name}" cannot be used: ${error.message}`,
          { position: error.position },
        );
      }
  }
}
