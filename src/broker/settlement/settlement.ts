import { randomUUID } from "node:crypto";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { MessageState, type ReceivedMessage } from "../../../gen/ts/sessionbus/v1/message_pb.js";
import { Disposition } from "../../../gen/ts/sessionbus/v1/messaging_service_pb.js";
import type { Store } from "../../store/store.js";
import { metricsOf } from "../broker-metrics.js";
import type { ResolvedEntity } from "../entities/entity-resolver.js";
import {
  InvalidArgumentError,
  MessageAlreadySettledError,
  MessageLockedError,
  MessageLockLostError,
  MessageNotFoundError,
  NotSessionEntityError,
  StoreUnavailableError,
} from "../errors.js";
import { checkCharacterLimit } from "../limits/character-limits.js";
import {
  checkListLength,
  checkLockTokens,
  MAX_DEFERRED_SEQUENCE_NUMBERS,
} from "../limits/request-list-limits.js";
import type { MessageLock, SessionHandle } from "../locks/lock-handles.js";
import type { MessageLocks } from "../locks/message-locks.js";
import { decodeStored } from "../messages/message-codec.js";
import { deadLetter, storeDeferred } from "../messages/settlement-actions.js";
import type { SessionRef, Sessions } from "../sessions/sessions.js";

export interface SettleOptions {
  disposition: Disposition;
  deadLetterReason: string;
  deadLetterDescription: string;
}

/** Dead-letter reason and description: characters (code points), as Service Bus allows. */
const MAX_REASON_LENGTH = 4096;
const MAX_DESCRIPTION_LENGTH = 4096;

const abandonOptions: SettleOptions = {
  disposition: Disposition.ABANDON,
  deadLetterReason: "",
  deadLetterDescription: "",
};

/** Settles, renews and fetches deferred messages by lock token or sequence number. */
export class Settlement {
  constructor(
    private readonly store: Store,
    private readonly locks: MessageLocks,
    private readonly sessions: Sessions,
  ) {}

  /** The session lock the request names, required (and checked) on session entities. */
  private async sessionOf(
    entity: ResolvedEntity,
    ref: SessionRef | undefined,
  ): Promise<SessionHandle | undefined> {
    if (entity.settings.requiresSession) return this.sessions.handle(entity, ref);
    if (ref) throw new NotSessionEntityError(entity.address.path);
    return undefined;
  }

  /**
   * Checks every token first and settles only if all are valid, so a bad token changes
   * nothing. The locks are claimed before the JetStream calls, so two concurrent settles of
   * one token cannot both go through.
   */
  async settle(
    entity: ResolvedEntity,
    tokens: string[],
    options: SettleOptions,
    ref?: SessionRef,
  ): Promise<void> {
    checkSettleOptions(entity, tokens, options);
    const session = await this.sessionOf(entity, ref);
    const held = tokens.map((token) => this.liveLock(entity, token, session));
    for (const lock of held) lock.settled = true;
    if (session && options.disposition === Disposition.ABANDON) {
      return this.abandonInSession(entity, session, held);
    }
    const outcomes = await Promise.allSettled(
      held.map((lock) => this.apply(entity, lock, options)),
    );
    let done = 0;
    outcomes.forEach((outcome, i) => {
      const lock = held[i] as MessageLock;
      if (outcome.status === "fulfilled") {
        done++;
        this.locks.settle(lock);
        if (lock.session) {
          lock.session.inflight.delete(lock);
          if (lock.target.kind === "active")
            lock.session.settled.push(Number(lock.message.sequenceNumber));
        }
      } else lock.settled = false;
    });
    this.count(entity, options.disposition, done);
    const failed = outcomes.find((o) => o.status === "rejected");
    if (failed) {
      throw new StoreUnavailableError(`settling messages of "${entity.address.path}"`, {
        cause: (failed as PromiseRejectedResult).reason,
      });
    }
  }

  /** Abandon in a session: see Sessions.abandon (order is kept by recalling the rest). */
  private async abandonInSession(
    entity: ResolvedEntity,
    session: SessionHandle,
    held: MessageLock[],
  ): Promise<void> {
    const active = held.filter((lock) => lock.target.kind === "active");
    const deferred = held.filter((lock) => lock.target.kind === "deferred");
    try {
      if (active.length > 0)
        await this.sessions.abandon(entity, session, new Set(active.map((l) => l.token)));
      await Promise.all(deferred.map((lock) => this.apply(entity, lock, abandonOptions)));
    } catch (error) {
      for (const lock of held) lock.settled = false;
      throw error;
    }
    for (const lock of held) {
      session.inflight.delete(lock);
      this.locks.settle(lock);
    }
    this.count(entity, Disposition.ABANDON, held.length);
  }

  /** Settled messages for the metrics; dead-letter copies count where they are stored. */
  private count(entity: ResolvedEntity, disposition: Disposition, settled: number): void {
    if (settled === 0) return;
    const metrics = metricsOf(this.store);
    if (disposition === Disposition.COMPLETE) metrics.completed(entity, settled);
    else if (disposition === Disposition.ABANDON) metrics.abandoned(entity, settled);
    else if (disposition === Disposition.DEFER) metrics.deferred(entity, settled);
  }

  /** Extends each lock by the entity's lock_duration; returns the new expiry of each. */
  async renew(entity: ResolvedEntity, tokens: string[]): Promise<Timestamp[]> {
    if (tokens.length === 0) {
      throw new InvalidArgumentError("lock_tokens", "lock_tokens is empty.", {
        entityPath: entity.address.path,
      });
    }
    checkLockTokens(tokens, { entityPath: entity.address.path });
    if (entity.settings.requiresSession) {
      throw new InvalidArgumentError(
        "lock_tokens",
        `Messages of "${entity.address.path}" are locked by their session: renew the session lock (RenewSessionLock).`,
        { entityPath: entity.address.path },
      );
    }
    const held = tokens.map((token) => this.liveLock(entity, token, undefined));
    return Promise.all(
      held.map(async (lock) => {
        const from = Date.now();
        const lockedUntil = from + entity.settings.lockDurationMs;
        if (lock.target.kind === "active") {
          await lock.target.delivery.extend();
        } else {
          lock.target.revision = await this.writeDeferredLock(entity, lock, lockedUntil);
        }
        this.locks.extend(lock, lockedUntil);
        return timestampFromMs(lockedUntil);
      }),
    );
  }

  /** Fetches deferred messages by their sequence numbers and locks them. */
  async receiveDeferred(
    entity: ResolvedEntity,
    sequences: bigint[],
    ref?: SessionRef,
  ): Promise<ReceivedMessage[]> {
    if (sequences.length === 0) {
      throw new InvalidArgumentError("sequence_numbers", "sequence_numbers is empty.", {
        entityPath: entity.address.path,
      });
    }
    checkListLength(sequences, MAX_DEFERRED_SEQUENCE_NUMBERS, "sequence_numbers", {
      entityPath: entity.address.path,
    });
    const session = await this.sessionOf(entity, ref);
    const received: ReceivedMessage[] = [];
    for (const sequence of sequences)
      received.push(await this.lockDeferred(entity, sequence, session));
    metricsOf(this.store).delivered(entity, received.length);
    return received;
  }

  private async lockDeferred(
    entity: ResolvedEntity,
    sequence: bigint,
    session: SessionHandle | undefined,
  ): Promise<ReceivedMessage> {
    const path = entity.address.path;
    const stored = await this.store.messages.getDeferred(entity.streamId, Number(sequence));
    if (!stored) throw new MessageNotFoundError(path, sequence);
    const message = decodeStored(stored.data);
    // Under a session lock, only that session's deferred messages can be fetched.
    if (session && message.message?.sessionId !== session.sessionId) {
      throw new MessageNotFoundError(path, sequence);
    }
    const { lock, revision } = await this.store.deferredLocks.read(
      entity.streamId,
      Number(sequence),
    );
    const now = Date.now();
    if (lock && lock.lockedUntil > now) throw new MessageLockedError(path, sequence);
    const deliveryCount = (lock?.deliveryCount ?? message.deliveryCount) + 1;
    const lockedUntil = now + entity.settings.lockDurationMs;
    const written = await this.store.deferredLocks.write(
      entity.streamId,
      Number(sequence),
      { token: randomUUID(), lockedUntil, deliveryCount },
      revision,
    );
    if (written === undefined) throw new MessageLockedError(path, sequence);
    const held = this.locks.add({
      entity: entity.identity,
      entityPath: path,
      lockedUntil,
      target: { kind: "deferred", copySequence: stored.sequence, revision: written },
      message,
      onEnd: undefined,
      session,
    });
    message.deliveryCount = deliveryCount;
    message.state = MessageState.DEFERRED;
    message.lockToken = held.token;
    message.lockedUntil = timestampFromMs(lockedUntil);
    return message;
  }

  /** The lock behind a token, if it may still be used on this entity. */
  private liveLock(
    entity: ResolvedEntity,
    token: string,
    session: SessionHandle | undefined,
  ): MessageLock {
    const path = entity.address.path;
    const lock = this.locks.get(token);
    if (!lock)
      throw new MessageLockLostError(path, "the lock token is unknown or its lock expired");
    if (lock.entity !== entity.identity) {
      throw new MessageLockLostError(path, `the lock token belongs to "${lock.entityPath}"`);
    }
    if (lock.session !== session) {
      throw new MessageLockLostError(path, "the lock token belongs to another session");
    }
    if (lock.settled) throw new MessageAlreadySettledError(path);
    // In a session, the session lock (checked by the caller) is the message lock.
    if (!session && lock.lockedUntil <= Date.now()) {
      throw new MessageLockLostError(
        path,
        `the lock expired at ${new Date(lock.lockedUntil).toISOString()}`,
      );
    }
    return lock;
  }

  private async apply(
    entity: ResolvedEntity,
    lock: MessageLock,
    options: SettleOptions,
  ): Promise<void> {
    const { disposition } = options;
    if (disposition === Disposition.DEAD_LETTER) {
      await deadLetter(this.store, entity, lock.message, {
        reason: options.deadLetterReason,
        description: options.deadLetterDescription,
        cause: "receiver",
      });
    }
    if (lock.target.kind === "active") {
      const { delivery } = lock.target;
      if (disposition === Disposition.ABANDON) return delivery.nak();
      if (disposition === Disposition.DEFER) await storeDeferred(this.store, entity, lock.message);
      return delivery.ack();
    }
    // A deferred message stays deferred when abandoned or deferred again.
    const sequence = Number(lock.message.sequenceNumber);
    if (disposition === Disposition.ABANDON || disposition === Disposition.DEFER) {
      await this.writeDeferredLock(entity, lock, 0);
      return;
    }
    await this.store.messages.deleteMessage(entity.streamId, lock.target.copySequence);
    await this.store.deferredLocks.remove(entity.streamId, sequence);
  }

  private async writeDeferredLock(
    entity: ResolvedEntity,
    lock: MessageLock,
    lockedUntil: number,
  ): Promise<number> {
    if (lock.target.kind !== "deferred") throw new Error("not a deferred lock");
    const sequence = Number(lock.message.sequenceNumber);
    const revision = await this.store.deferredLocks.write(
      entity.streamId,
      sequence,
      { token: lock.token, lockedUntil, deliveryCount: lock.message.deliveryCount },
      lock.target.revision,
    );
    if (revision === undefined) {
      throw new MessageLockLostError(
        entity.address.path,
        "another receiver took the deferred message",
      );
    }
    return revision;
  }
}

function checkSettleOptions(
  entity: ResolvedEntity,
  tokens: string[],
  options: SettleOptions,
): void {
  const entityPath = entity.address.path;
  if (tokens.length === 0) {
    throw new InvalidArgumentError(
      "lock_tokens",
      "lock_tokens is empty: name the deliveries to settle.",
      {
        entityPath,
      },
    );
  }
  checkLockTokens(tokens, { entityPath });
  if (new Set(tokens).size !== tokens.length) {
    throw new InvalidArgumentError("lock_tokens", "lock_tokens names a token twice.", {
      entityPath,
    });
  }
  if (
    !Object.values(Disposition).includes(options.disposition) ||
    options.disposition === Disposition.UNSPECIFIED
  ) {
    throw new InvalidArgumentError(
      "disposition",
      "disposition must be COMPLETE, ABANDON, DEAD_LETTER or DEFER.",
      { entityPath },
    );
  }
  checkCharacterLimit(options.deadLetterReason, MAX_REASON_LENGTH, "dead_letter_reason", {
    entityPath,
  });
  checkCharacterLimit(
    options.deadLetterDescription,
    MAX_DESCRIPTION_LENGTH,
    "dead_letter_description",
    { entityPath },
  );
}
