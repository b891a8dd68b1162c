import { randomBytes } from "node:crypto";
import type { EntityRecord, EntitySettings } from "../store/entity-record.js";
import { deadLetterStreamId } from "../store/entity-record.js";
import type { Store } from "../store/store.js";
import { entityKey, validateEntityName } from "./entity-path.js";
import { applySettings, DEFAULT_SETTINGS } from "./entity-settings.js";
import {
  EntityAlreadyExistsError,
  EntityNotFoundError,
  InvalidArgumentError,
  QuotaExceededError,
  StoreUnavailableError,
} from "./errors.js";

/** Figures of a queue at the time of asking. */
export interface QueueRuntime {
  activeMessageCount: number;
  deferredMessageCount: number;
  scheduledMessageCount: number;
  deadLetterMessageCount: number;
  sizeBytes: number;
}

export interface QueueView {
  record: EntityRecord;
  runtime: QueueRuntime;
}

export interface QueuePage {
  queues: QueueView[];
  nextPageToken: string;
}

const MAX_PAGE = 1000;

/** Create, read, update, delete of queues: the registry entry plus its two streams. */
export class QueueAdmin {
  constructor(private readonly store: Store) {}

  async create(name: string, changes: Partial<EntitySettings>): Promise<QueueView> {
    validateEntityName(name, "name");
    const settings = applySettings(DEFAULT_SETTINGS, changes, name);
    const now = Date.now();
    const record: EntityRecord = {
      kind: "queue",
      name,
      streamId: randomBytes(6).toString("hex"),
      settings,
      createdAt: now,
      updatedAt: now,
    };
    const key = entityKey(name);
    if (!(await this.store.entities.create(key, record))) throw new EntityAlreadyExistsError(name);
    try {
      await this.ensureStreams(record);
    } catch (error) {
      await this.store.entities.remove(key).catch(() => undefined);
      await this.removeStreams(record).catch(() => undefined);
      if (/insufficient|resources/i.test(String(error))) {
        throw new QuotaExceededError(name, { cause: error });
      }
      throw new StoreUnavailableError(`creating the streams of "${name}"`, { cause: error });
    }
    return this.view(record);
  }

  async get(name: string): Promise<QueueView> {
    validateEntityName(name, "name");
    return this.view(await this.find(name));
  }

  async list(pageSize: number, pageToken: string): Promise<QueuePage> {
    if (pageSize < 0 || pageSize > MAX_PAGE) {
      throw new InvalidArgumentError("page_size", `page_size must be between 0 and ${MAX_PAGE}.`);
    }
    const size = pageSize || 100;
    const keys = this.store.entities.keys().filter((k) => k > pageToken);
    const page = keys.slice(0, size);
    const views = await Promise.all(
      page.map(async (key) => {
        const found = await this.store.entities.get(key);
        // A queue deleted (or still being created) meanwhile is left out of the page.
        return found ? this.view(found.record).catch(() => undefined) : undefined;
      }),
    );
    const queues = views.filter((v): v is QueueView => v !== undefined);
    const more = keys.length > size;
    return { queues, nextPageToken: more ? (page.at(-1) ?? "") : "" };
  }

  async update(name: string, changes: Partial<EntitySettings>): Promise<QueueView> {
    validateEntityName(name, "name");
    const key = entityKey(name);
    const found = await this.store.entities.read(key);
    if (!found) throw new EntityNotFoundError(name);
    const { record, revision } = found;
    if (
      changes.requiresSession !== undefined &&
      changes.requiresSession !== record.settings.requiresSession
    ) {
      throw new InvalidArgumentError(
        "properties.requires_session",
        `requires_session of "${record.name}" is fixed at creation; create a new queue instead.`,
        { entityPath: record.name },
      );
    }
    const settings = applySettings(record.settings, changes, record.name);
    const updated: EntityRecord = { ...record, settings, updatedAt: Date.now() };
    await this.ensureStreams(updated);
    await this.store.entities.update(key, updated, revision);
    return this.view(updated);
  }

  async delete(name: string): Promise<void> {
    validateEntityName(name, "name");
    const record = await this.find(name);
    await this.store.entities.remove(entityKey(name));
    await this.removeStreams(record);
  }

  private async find(name: string): Promise<EntityRecord> {
    const found = await this.store.entities.get(entityKey(name));
    if (!found) throw new EntityNotFoundError(name);
    return found.record;
  }

  private async ensureStreams(record: EntityRecord): Promise<void> {
    await this.store.messages.ensure(record.streamId, record.settings);
    if (record.settings.requiresSession) {
      await this.store.sessionIndex.ensure(record.streamId, record.settings.lockDurationMs);
    }
    await this.store.messages.ensure(deadLetterStreamId(record.streamId), {
      ...record.settings,
      requiresDuplicateDetection: false,
    });
  }

  private async removeStreams(record: EntityRecord): Promise<void> {
    await this.store.messages.remove(record.streamId);
    await this.store.sessionIndex.remove(record.streamId);
    await this.store.messages.remove(deadLetterStreamId(record.streamId));
  }

  private async view(record: EntityRecord): Promise<QueueView> {
    const [main, dead] = await Promise.all([
      this.store.messages.figures(record.streamId),
      this.store.messages.figures(deadLetterStreamId(record.streamId)),
    ]);
    return {
      record,
      runtime: {
        activeMessageCount: main.messages - main.deferred - main.scheduled,
        deferredMessageCount: main.deferred,
        scheduledMessageCount: main.scheduled,
        deadLetterMessageCount: dead.messages,
        sizeBytes: main.bytes + dead.bytes,
      },
    };
  }
}
