import type { Rule } from "../../../gen/ts/sessionbus/v1/topic_pb.js";
import { checkSubscriptionRulesSize } from "../../rules/rule-limits.js";
import { type RuleRecord, ruleFromProto } from "../../rules/rule-record.js";
import type { Store } from "../../store/store.js";
import { updateWithRetry } from "../entities/registry-update.js";
import { EntityAlreadyExistsError, EntityNotFoundError, InvalidArgumentError } from "../errors.js";
import type { SubscriptionAdmin } from "./subscription-admin.js";

/** Most rules a subscription may have (each is evaluated on every send to the topic). */
export const MAX_RULES_PER_SUBSCRIPTION = 2000;

/**
 * The rules of a subscription, kept in its registry record: a change is one compare-and-set,
 * and every broker's local copy of the registry sees it (and evaluates it on the next send).
 */
export class RuleAdmin {
  constructor(
    private readonly store: Store,
    private readonly subscriptions: SubscriptionAdmin,
  ) {}

  async create(topicName: string, subscriptionName: string, rule: Rule | undefined) {
    // Validated before anything is read or written: a bad rule stores nothing.
    const created = ruleFromProto(rule, "rule", Date.now());
    const { key } = await this.subscriptions.find(topicName, subscriptionName);
    await updateWithRetry(this.store, key, (record) => {
      const rules = record.rules ?? [];
      if (rules.some((r) => sameName(r.name, created.name))) {
        throw new EntityAlreadyExistsError(`${record.name}/rules/${created.name}`);
      }
      if (rules.length >= MAX_RULES_PER_SUBSCRIPTION) {
        throw new InvalidArgumentError(
          "rule",
          `"${record.name}" already has ${MAX_RULES_PER_SUBSCRIPTION} rules, the most a subscription may have.`,
          { entityPath: record.name },
        );
      }
      const updated = [...rules, created];
      checkSubscriptionRulesSize(updated, record.name);
      return { ...record, rules: updated, updatedAt: Date.now() };
    });
    return created;
  }

  async list(topicName: string, subscriptionName: string): Promise<RuleRecord[]> {
    const { record } = await this.subscriptions.find(topicName, subscriptionName);
    return record.rules ?? [];
  }

  async delete(topicName: string, subscriptionName: string, ruleName: string): Promise<void> {
    const { key, record } = await this.subscriptions.find(topicName, subscriptionName);
    const path = `${record.name}/rules/${ruleName}`;
    await updateWithRetry(this.store, key, (current) => {
      const rules = current.rules ?? [];
      if (!rules.some((r) => sameName(r.name, ruleName))) throw new EntityNotFoundError(path);
      return {
        ...current,
        rules: rules.filter((r) => !sameName(r.name, ruleName)),
        updatedAt: Date.now(),
      };
    });
  }
}

/** Rule names match case-insensitively, like entity names. */
function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
