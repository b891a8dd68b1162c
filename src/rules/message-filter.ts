// Interim: replaced by the rules branch.
import type { Message } from "../../gen/ts/sessionbus/v1/message_pb.js";
import type { RuleRecord } from "./rule-record.js";
export type MessageFilter = (message: Message) => boolean;
export function compileRules(rules: RuleRecord[]): MessageFilter {
  return (message) =>
    rules.some((rule) => {
      const f = rule.filter;
      if (f.kind === "true") return true;
      if (f.kind === "false" || f.kind === "sql") return false;
      for (const [k, v] of Object.entries(f.fields))
        if ((message as unknown as Record<string, unknown>)[k] !== v) return false;
      for (const [k, v] of Object.entries(f.properties)) {
        const p = message.applicationProperties[k]?.value;
        if (!p || !("string" in v) || p.value !== v.string) return false;
      }
      return true;
    });
}
