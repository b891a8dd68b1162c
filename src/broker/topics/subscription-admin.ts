import { randomBytes } from "node:crypto";
import type { Rule } from "../../../gen/ts/sessionbus/v1/topic_pb.js";
import { defaultRule, ruleFromProto } from "../../rules/rule-record.js";
import type { EntityRecord, EntitySettings } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import { checkedPageSize, checkPageToken, pageAfter } from "../entities/entity-paging.js";
import {
  entityKey,
  subscriptionPath,
  validateEntityName,
  validateSubscriptionName,
} from "../entities/entity-path.js";
import { applySettings, refuseRequiresSessionChange } from "../entities/entity-settings.js";
import {
  type EntityRuntime,
  ensureEntityStreams,
  ensureStreamsOrUndo,
  entityRuntime,
  removeEntityStreams,
} from "../entities/entity-streams.js";
import { updateWithRetry } from "../entities/registry-update.js";
import { EntityAlreadyExistsError, EntityNotFoundError, QuotaExceededError } from "../errors.js";

/** The settings a subscription has of its own (the rest come from its topic). */
export type SubscriptionSettingChanges = Partial<
  Pick<
    EntitySettings,
    | "requiresSession"
    | "lockDurationMs"
    | "maxDeliveryCount"
    | "defaultMessageTtlMs"
    | "deadLetteringOnMessageExpiration"
    | "maxSessionStateSizeBytes"
  >
>;

export interface SubscriptionView {
  topicName: string;
  /** The subscription's own name (not its path). */
  name: string;
  record: EntityRecord;
  runtime: EntityRuntime;
}

export interface SubscriptionPage {
  subscriptions: SubscriptionView[];
  nextPageToken: string;
}

/**
 * Slots per topic: each is one token of a topic message's subject, and a subject must fit
 * in a NATS protocol line (4 KiB) next to a session id of up to 128 characters.
 */
export const MAX_SUBSCRIPTIONS_PER_TOPIC = 1000;

/**
 * Create, read, update, delete of subscriptions. A subscription is a queue of its own (same
 * streams, sessions, dead-letter queue) whose stream copies, by JetStream sourcing, the
 * topic messages whose subject has its slot set. The topic's record owns the slots, so
 * concurrent creates never share one.
 */
export class SubscriptionAdmin {
  constructor(private readonly store: Store) {}

  async create(
    topicName: string,
    name: string,
    changes: SubscriptionSettingChanges,
    rule: Rule | undefined,
  ): Promise<SubscriptionView> {
    validateEntityName(topicName, "topic_name");
    validateSubscriptionName(name, "name");
    const now = Date.now();
    const rules = [rule ? ruleFromProto(rule, "rule", now) : defaultRule(now)];
    const topicKey = entityKey(topicName);
    const topic = await this.findTopic(topicName);
    const path = subscriptionPath(topic.name, name);
    const key = entityKey(path);
    const settings = applySettings(
      {
        ...topic.settings,
        requiresDuplicateDetection: false,
      },
      changes,
      path,
    );
    const slot = await this.claimSlot(topicKey, topicName, key);
    const record: EntityRecord = {
      kind: "subscription",
      name: path,
      streamId: randomBytes(6).toString("hex"),
      settings,
      createdAt: now,
      updatedAt: now,
      link: { topicKey, topicStreamId: topic.streamId, slot },
      rules,
    };
    if (!(await this.store.entities.create(key, record))) {
      await this.releaseSlot(topicKey, key, slot);
      throw new EntityAlreadyExistsError(path);
    }
    await ensureStreamsOrUndo(
      this.store,
      key,
      record,
      {
        ensure: (r) => ensureEntityStreams(this.store, r),
        remove: (r) => removeEntityStreams(this.store, r),
      },
      `creating the streams of "${path}"`,
      () => this.releaseSlot(topicKey, key, slot),
    );
    return this.view(topic.name, name, record);
  }

  async get(topicName: string, name: string): Promise<SubscriptionView> {
    const { record, topic } = await this.find(topicName, name);
    return this.view(topic.name, subscriptionNameOf(record), record);
  }

  async list(topicName: string, pageSize: number, pageToken: string): Promise<SubscriptionPage> {
    const size = checkedPageSize(pageSize);
    checkPageToken(pageToken);
    validateEntityName(topicName, "topic_name");
    const topic = await this.findTopic(topicName);
    const sorted = this.store.entities
      .subscriptionsOf(entityKey(topic.name))
      .sort((a, b) => entityKey(a.name).localeCompare(entityKey(b.name)));
    const { views, nextPageToken } = await pageAfter(
      sorted,
      (record) => entityKey(record.name),
      pageToken,
      size,
      (record) => this.view(topic.name, subscriptionNameOf(record), record).catch(() => undefined),
    );
    return { subscriptions: views, nextPageToken };
  }

  async update(
    topicName: string,
    name: string,
    changes: SubscriptionSettingChanges,
  ): Promise<SubscriptionView> {
    const { key, topic } = await this.find(topicName, name);
    const updated = await updateWithRetry(this.store, key, (record) => {
      refuseRequiresSessionChange(record, changes);
      const settings = applySettings(record.settings, changes, record.name);
      return { ...record, settings, updatedAt: Date.now() };
    });
    await ensureEntityStreams(this.store, updated);
    return this.view(topic.name, subscriptionNameOf(updated), updated);
  }

  async delete(topicName: string, name: string): Promise<void> {
    const { key, record } = await this.find(topicName, name);
    await this.store.entities.remove(key);
    await removeEntityStreams(this.store, record);
    if (record.link) {
      await this.releaseSlot(record.link.topicKey, key, record.link.slot).catch(() => undefined);
    }
  }

  /** The subscription's record, read from the bucket (for changes to it). */
  async find(
    topicName: string,
    name: string,
  ): Promise<{ key: string; record: EntityRecord; topic: EntityRecord }> {
    validateEntityName(topicName, "topic_name");
    validateSubscriptionName(name, "name");
    const topic = await this.findTopic(topicName);
    const path = subscriptionPath(topic.name, name);
    const key = entityKey(path);
    const found = await this.store.entities.read(key);
    if (found?.record.kind !== "subscription") throw new EntityNotFoundError(path);
    return { key, record: found.record, topic };
  }

  private async findTopic(topicName: string): Promise<EntityRecord> {
    const found = await this.store.entities.get(entityKey(topicName));
    if (found?.record.kind !== "topic") throw new EntityNotFoundError(topicName);
    return found.record;
  }

  /** Takes the lowest free slot of the topic for `subscriptionKey`. */
  private async claimSlot(
    topicKey: string,
    topicName: string,
    subscriptionKey: string,
  ): Promise<number> {
    let slot = -1;
    await updateWithRetry(this.store, topicKey, (topic) => {
      if (topic.kind !== "topic") throw new EntityNotFoundError(topicName);
      const slots = { ...(topic.slots ?? {}) };
      if (slots[subscriptionKey] !== undefined) throw new EntityAlreadyExistsError(subscriptionKey);
      const taken = new Set(Object.values(slots));
      if (taken.size >= MAX_SUBSCRIPTIONS_PER_TOPIC) {
        throw new QuotaExceededError(topic.name, {
          cause: new Error(`a topic has at most ${MAX_SUBSCRIPTIONS_PER_TOPIC} subscriptions`),
        });
      }
      slot = 0;
      while (taken.has(slot)) slot++;
      slots[subscriptionKey] = slot;
      return { ...topic, slots };
    });
    return slot;
  }

  private async releaseSlot(topicKey: string, subscriptionKey: string, slot: number) {
    await updateWithRetry(this.store, topicKey, (topic) => {
      const slots = { ...(topic.slots ?? {}) };
      if (slots[subscriptionKey] === slot) delete slots[subscriptionKey];
      return { ...topic, slots };
    });
  }

  private async view(
    topicName: string,
    name: string,
    record: EntityRecord,
  ): Promise<SubscriptionView> {
    return { topicName, name, record, runtime: await entityRuntime(this.store, record) };
  }
}

/** The subscription's own name: the last segment of its path. */
export function subscriptionNameOf(record: EntityRecord): string {
  return record.name.slice(record.name.lastIndexOf("/") + 1);
}
