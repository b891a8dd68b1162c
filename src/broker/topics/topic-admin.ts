import { randomBytes } from "node:crypto";
import type { EntityRecord, EntitySettings } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import { queueLayout } from "../../store/subjects.js";
import { pageOfKind } from "../entities/entity-paging.js";
import { entityKey, validateEntityName, validateTopLevelName } from "../entities/entity-path.js";
import { applySettings, DEFAULT_SETTINGS } from "../entities/entity-settings.js";
import {
  type EntityRuntime,
  ensureStreamsOrUndo,
  entityRuntime,
  removeEntityStreams,
} from "../entities/entity-streams.js";
import { updateWithRetry } from "../entities/registry-update.js";
import { EntityAlreadyExistsError, EntityNotFoundError } from "../errors.js";

/** The settings a topic has (the rest of EntitySettings is its subscriptions'). */
export type TopicSettingChanges = Partial<
  Pick<
    EntitySettings,
    | "defaultMessageTtlMs"
    | "maxMessageSizeBytes"
    | "requiresDuplicateDetection"
    | "duplicateDetectionWindowMs"
    | "maxSizeBytes"
  >
>;

export interface TopicView {
  record: EntityRecord;
  /** Sums over the topic's subscriptions. */
  runtime: EntityRuntime;
  subscriptionCount: number;
}

export interface TopicPage {
  topics: TopicView[];
  nextPageToken: string;
}

/**
 * Create, read, update, delete of topics: the registry entry and the topic's stream, which
 * holds each message only until its subscriptions' streams have copied it.
 */
export class TopicAdmin {
  constructor(private readonly store: Store) {}

  async create(name: string, changes: TopicSettingChanges): Promise<TopicView> {
    validateTopLevelName(name, "name");
    const settings = applySettings(DEFAULT_SETTINGS, changes, name);
    const now = Date.now();
    const record: EntityRecord = {
      kind: "topic",
      name,
      streamId: randomBytes(6).toString("hex"),
      settings,
      createdAt: now,
      updatedAt: now,
      slots: {},
    };
    const key = entityKey(name);
    if (!(await this.store.entities.create(key, record))) throw new EntityAlreadyExistsError(name);
    // Rules left by an earlier entity of this name (a delete cut short) do not carry over.
    await this.store.authorizationRules.removeScope(key);
    await ensureStreamsOrUndo(
      this.store,
      key,
      record,
      { ensure: (r) => this.ensureStreams(r), remove: (r) => this.removeStreams(r) },
      `creating the stream of topic "${name}"`,
    );
    return this.view(record);
  }

  async get(name: string): Promise<TopicView> {
    validateEntityName(name, "name");
    return this.view(await this.find(name));
  }

  async list(pageSize: number, pageToken: string): Promise<TopicPage> {
    const { views, nextPageToken } = await pageOfKind(
      this.store,
      "topic",
      pageSize,
      pageToken,
      (record) => this.view(record),
    );
    return { topics: views, nextPageToken };
  }

  async update(name: string, changes: TopicSettingChanges): Promise<TopicView> {
    validateEntityName(name, "name");
    // Compare-and-set, retried: concurrent updates (and slot changes) all succeed.
    const updated = await updateWithRetry(this.store, entityKey(name), (record) => {
      if (record.kind !== "topic") throw new EntityNotFoundError(name);
      const settings = applySettings(record.settings, changes, record.name);
      return { ...record, settings, updatedAt: Date.now() };
    });
    await this.ensureStreams(updated);
    return this.view(updated);
  }

  /** Removes the topic, then each subscription with its streams. */
  async delete(name: string): Promise<void> {
    validateEntityName(name, "name");
    const key = entityKey(name);
    // Read, not the local copy: the slots must include a subscription created a moment ago.
    const found = await this.store.entities.read(key);
    if (found?.record.kind !== "topic") throw new EntityNotFoundError(name);
    const { record } = found;
    await this.store.entities.remove(key);
    await this.removeStreams(record);
    // Its access rules go with it: a queue or topic made later under this name starts without.
    await this.store.authorizationRules.removeScope(key);
    for (const subscriptionKey of Object.keys(record.slots ?? {})) {
      const found = await this.store.entities.read(subscriptionKey);
      if (found?.record.link?.topicKey !== key) continue;
      await this.store.entities.remove(subscriptionKey);
      await removeEntityStreams(this.store, found.record);
    }
  }

  /**
   * The topic stream, and an `SB_<topicId>` stream like a queue's that holds only the
   * topic's scheduled messages until they are due (then they are sent to the topic).
   */
  private async ensureStreams(record: EntityRecord): Promise<void> {
    await this.store.messages.ensureTopic(record.streamId, record.settings);
    await this.store.messages.ensure(queueLayout(record.streamId), record.settings);
  }

  private async removeStreams(record: EntityRecord): Promise<void> {
    await this.store.messages.removeTopic(record.streamId);
    await this.store.messages.remove(record.streamId);
  }

  private async find(name: string): Promise<EntityRecord> {
    const found = await this.store.entities.get(entityKey(name));
    if (found?.record.kind !== "topic") throw new EntityNotFoundError(name);
    return found.record;
  }

  private async view(record: EntityRecord): Promise<TopicView> {
    const subscriptions = this.store.entities.subscriptionsOf(entityKey(record.name));
    const figures = await Promise.all(subscriptions.map((s) => entityRuntime(this.store, s)));
    const runtime: EntityRuntime = {
      activeMessageCount: 0,
      deferredMessageCount: 0,
      scheduledMessageCount: 0,
      deadLetterMessageCount: 0,
      sizeBytes: 0,
      sessionCount: 0,
      lockedSessionCount: 0,
    };
    for (const f of figures) {
      for (const field of Object.keys(runtime) as (keyof EntityRuntime)[]) {
        runtime[field] += f[field];
      }
    }
    // The topic's own figures: the messages scheduled to it and not due yet.
    const own = await this.store.messages.figures(record.streamId);
    runtime.scheduledMessageCount += own.scheduled;
    runtime.sizeBytes += own.bytes;
    return { record, runtime, subscriptionCount: subscriptions.length };
  }
}
