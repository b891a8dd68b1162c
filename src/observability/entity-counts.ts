import {
  type BrokerMetrics,
  DEAD_LETTER_CAUSES,
  type DeadLetterCause,
  type EntityCensus,
  type MeteredEntity,
} from "../broker/broker-metrics.js";

/** The `entity` label of everything counted for entities past the cap. */
export const OTHER_ENTITIES = "(other)";

/** What is counted per entity: plain numbers, so counting is an increment and nothing else. */
export interface EntityCounts {
  sent: number;
  delivered: number;
  completed: number;
  abandoned: number;
  deferred: number;
  /** By cause, in the order of DEAD_LETTER_CAUSES. */
  deadLettered: number[];
  expired: number;
  messageLocksLost: number;
  sessionLocksLost: number;
}

/** Entities tracked beyond the labelled ones before the table asks to be reconciled. */
const GROWTH_ALLOWANCE = 1_000;

/** The counts as the metrics show them, one entry per `entity` label. */
export interface LabelledCounts {
  entity: string;
  counts: EntityCounts;
}

const CAUSE_INDEX = new Map<DeadLetterCause, number>(
  DEAD_LETTER_CAUSES.map((cause, i) => [cause, i]),
);

function zero(): EntityCounts {
  return {
    sent: 0,
    delivered: 0,
    completed: 0,
    abandoned: 0,
    deferred: 0,
    deadLettered: DEAD_LETTER_CAUSES.map(() => 0),
    expired: 0,
    messageLocksLost: 0,
    sessionLocksLost: 0,
  };
}

function addInto(into: EntityCounts, from: EntityCounts): void {
  into.sent += from.sent;
  into.delivered += from.delivered;
  into.completed += from.completed;
  into.abandoned += from.abandoned;
  into.deferred += from.deferred;
  from.deadLettered.forEach((n, i) => {
    into.deadLettered[i] = (into.deadLettered[i] ?? 0) + n;
  });
  into.expired += from.expired;
  into.messageLocksLost += from.messageLocksLost;
  into.sessionLocksLost += from.sessionLocksLost;
}

interface Tracked {
  name: string;
  counts: EntityCounts;
}

/**
 * The broker's counts by entity, with the label rule applied when they are read (at scrape
 * time, never on the hot path): an entity that exists gets a label of its own, in the order
 * first seen, until `maxEntities` have one; the counts of the others are summed under
 * `entity="(other)"`. A deleted entity's series go at the next scrape and free its place
 * (what an entity past the cap counted stays in "(other)"). Entities are told apart by
 * their stream id, so a queue deleted and created again under its name starts afresh.
 */
export class EntityCountTable implements BrokerMetrics {
  private readonly byIdentity = new Map<string, Tracked>();
  /** Identities with a label of their own; at most maxEntities. */
  private readonly labelled = new Set<string>();
  /** What deleted entities without a label of their own had counted. */
  private readonly retired = zero();

  /**
   * `onGrowth`: called when the table tracks many more entities than get a label, so the
   * owner can reconcile it with a census when nobody scrapes (entities created and deleted
   * by the thousand would otherwise pile up here).
   */
  constructor(
    private readonly maxEntities: number,
    private readonly onGrowth: () => void = () => undefined,
  ) {}

  private of(entity: MeteredEntity): EntityCounts {
    const found = this.byIdentity.get(entity.identity);
    if (found) return found.counts;
    const name = entity.address.deadLetter
      ? `${entity.record.name}/$deadletterqueue`
      : entity.record.name;
    return this.track(entity.identity, name);
  }

  private ofIdentity(identity: string, entityPath: string): EntityCounts {
    return this.byIdentity.get(identity)?.counts ?? this.track(identity, entityPath);
  }

  private track(identity: string, name: string): EntityCounts {
    const tracked = { name, counts: zero() };
    this.byIdentity.set(identity, tracked);
    if (this.labelled.size < this.maxEntities) this.labelled.add(identity);
    if (this.byIdentity.size > this.maxEntities + GROWTH_ALLOWANCE) this.onGrowth();
    return tracked.counts;
  }

  sent(entity: MeteredEntity, count: number): void {
    this.of(entity).sent += count;
  }
  delivered(entity: MeteredEntity, count: number): void {
    this.of(entity).delivered += count;
  }
  completed(entity: MeteredEntity, count: number): void {
    this.of(entity).completed += count;
  }
  abandoned(entity: MeteredEntity, count: number): void {
    this.of(entity).abandoned += count;
  }
  deferred(entity: MeteredEntity, count: number): void {
    this.of(entity).deferred += count;
  }
  deadLettered(entity: MeteredEntity, cause: DeadLetterCause): void {
    const counts = this.of(entity).deadLettered;
    const i = CAUSE_INDEX.get(cause) ?? 0;
    counts[i] = (counts[i] ?? 0) + 1;
  }
  expired(entity: MeteredEntity, count: number): void {
    this.of(entity).expired += count;
  }
  messageLockLost(identity: string, entityPath: string): void {
    this.ofIdentity(identity, entityPath).messageLocksLost++;
  }
  sessionLockLost(identity: string, entityPath: string): void {
    this.ofIdentity(identity, entityPath).sessionLocksLost++;
  }

  /**
   * Applies the census (every entity that exists now): forgets deleted entities, gives
   * labels to entities not seen yet while there is room (so an idle queue has its series
   * too), and returns the counts by label. `(other)` is there once any entity lacks a
   * label of its own.
   */
  reconcile(census: readonly EntityCensus[]): LabelledCounts[] {
    const alive = new Set<string>();
    for (const entry of census) {
      alive.add(entry.identity);
      if (!this.byIdentity.has(entry.identity)) this.track(entry.identity, entry.name);
    }
    for (const [identity, tracked] of this.byIdentity) {
      if (alive.has(identity)) continue;
      this.byIdentity.delete(identity);
      if (!this.labelled.delete(identity)) addInto(this.retired, tracked.counts);
    }
    // Places freed by deletions go to entities that had none, oldest first.
    for (const identity of this.byIdentity.keys()) {
      if (this.labelled.size >= this.maxEntities) break;
      if (!this.labelled.has(identity)) this.labelled.add(identity);
    }
    const byLabel = new Map<string, EntityCounts>();
    let other: EntityCounts | undefined;
    for (const [identity, tracked] of this.byIdentity) {
      if (!this.labelled.has(identity)) {
        other ??= zero();
        addInto(other, tracked.counts);
        continue;
      }
      // Two identities share a name for a moment when an entity was just created anew.
      const sum = byLabel.get(tracked.name) ?? zero();
      addInto(sum, tracked.counts);
      byLabel.set(tracked.name, sum);
    }
    const retired = Object.values(this.retired).some((v) =>
      Array.isArray(v) ? v.some((n) => n > 0) : v > 0,
    );
    if (retired) {
      other ??= zero();
      addInto(other, this.retired);
    }
    const rows = [...byLabel].map(([entity, counts]) => ({ entity, counts }));
    if (other) rows.push({ entity: OTHER_ENTITIES, counts: other });
    return rows;
  }

  /** Whether the entity has a label of its own (its gauges are shown). */
  hasLabel(identity: string): boolean {
    return this.labelled.has(identity);
  }
}
