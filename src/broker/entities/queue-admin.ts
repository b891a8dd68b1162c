import { randomBytes } from "node:crypto";
import type { EntityRecord, EntitySettings } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import { EntityAlreadyExistsError, EntityNotFoundError } from "../errors.js";
import { pageOfKind } from "./entity-paging.js";
import { entityKey, validateEntityName, validateTopLevelName } from "./entity-path.js";
import { applySettings, DEFAULT_SETTINGS, refuseRequiresSessionChange } from "./entity-settings.js";
import {
  type EntityRuntime,
  ensureEntityStreams,
  ensureStreamsOrUndo,
  entityRuntime,
  removeEntityStreams,
} from "./entity-streams.js";
import { updateWithRetry } from "./registry-update.js";

/** Figures of a queue at the time of asking. */
export type QueueRuntime = EntityRuntime;

export interface QueueView {
  record: EntityRecord;
  runtime: QueueRuntime;
}

export interface QueuePage {
  queues: QueueView[];
  nextPageToken: string;
}

/** Create, read, update, delete of queues: the registry entry plus its two streams. */
export class QueueAdmin {
  constructor(private readonly store: Store) {}

  async create(name: string, changes: Partial<EntitySettings>): Promise<QueueView> {
    validateTopLevelName(name, "name");
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
    // Rules left by an earlier entity of this name (a delete cut short) do not carry over.
    await this.store.authorizationRules.removeScope(key);
    await ensureStreamsOrUndo(
      this.store,
      key,
      record,
      { ensure: (r) => this.ensureStreams(r), remove: (r) => this.removeStreams(r) },
      `creating the streams of "${name}"`,
    );
    return this.view(record);
  }

  async get(name: string): Promise<QueueView> {
    validateEntityName(name, "name");
    return this.view(await this.find(name));
  }

  async list(pageSize: number, pageToken: string): Promise<QueuePage> {
    const { views, nextPageToken } = await pageOfKind(
      this.store,
      "queue",
      pageSize,
      pageToken,
      (record) => this.view(record),
    );
    return { queues: views, nextPageToken };
  }

  async update(name: string, changes: Partial<EntitySettings>): Promise<QueueView> {
    validateEntityName(name, "name");
    // Compare-and-set, retried: concurrent updates of one queue all succeed, the last wins.
    const updated = await updateWithRetry(this.store, entityKey(name), (record) => {
      if (record.kind !== "queue") throw new EntityNotFoundError(name);
      refuseRequiresSessionChange(record, changes);
      const settings = applySettings(record.settings, changes, record.name);
      return { ...record, settings, updatedAt: Date.now() };
    });
    await this.ensureStreams(updated);
    return this.view(updated);
  }

  async delete(name: string): Promise<void> {
    validateEntityName(name, "name");
    const record = await this.find(name);
    await this.store.entities.remove(entityKey(name));
    await this.removeStreams(record);
    // Its access rules go with it: a queue or topic made later under this name starts without.
    await this.store.authorizationRules.removeScope(entityKey(name));
  }

  private async find(name: string): Promise<EntityRecord> {
    const found = await this.store.entities.get(entityKey(name));
    if (found?.record.kind !== "queue") throw new EntityNotFoundError(name);
    return found.record;
  }

  private ensureStreams(record: EntityRecord): Promise<void> {
    return ensureEntityStreams(this.store, record);
  }

  private removeStreams(record: EntityRecord): Promise<void> {
    return removeEntityStreams(this.store, record);
  }

  private async view(record: EntityRecord): Promise<QueueView> {
    return { record, runtime: await entityRuntime(this.store, record) };
  }
}
