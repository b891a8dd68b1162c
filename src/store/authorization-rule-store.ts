import type { KV } from "@nats-io/kv";
import type { Right } from "../auth/access-rights.js";
import { watchBucket } from "./bucket-watch.js";
import type { KvCompareAndSet } from "./kv-compare-and-set.js";

/** A shared access authorization rule as stored. */
export interface AuthorizationRuleRecord {
  /** As first written; matched case-insensitively. */
  name: string;
  rights: Right[];
  primaryKey: string;
  secondaryKey: string;
  createdMs: number;
  updatedMs: number;
}

/** Where a rule lives: "" for the namespace, else its queue or topic's lower-cased name. */
export type RuleScope = string;

export interface VersionedRule {
  rule: AuthorizationRuleRecord;
  revision: number;
}

/** How long a rule name the bucket did not hold is answered as missing without reading it. */
const MISS_KEPT_MS = 1000;
/** Missing names remembered at most (then forgotten all at once). */
const MAX_MISSES = 10_000;
/**
 * Names not in the local copy looked up in the bucket per second, at most; beyond that they
 * are answered as missing (the watch shows a new rule within milliseconds anyway).
 */
const MISS_READS_PER_SECOND = 50;

/**
 * Authorization rules in one KV bucket, one entry per rule. A watch keeps a local copy, so
 * checking a token costs no round trip; `generation` changes with every change seen, which
 * is what cached token verdicts are checked against.
 */
export class AuthorizationRuleStore {
  private readonly rules = new Map<string, VersionedRule>();
  private stopWatch: (() => void) | undefined;
  private changes = 0;
  /** Rule keys the bucket did not hold when last read, with when and at which generation. */
  private readonly misses = new Map<string, { at: number; generation: number }>();
  /** Bucket reads for names not in the local copy during the current second. */
  private missWindow = { start: 0, reads: 0 };

  constructor(
    private readonly kv: KV,
    private readonly compareAndSet: KvCompareAndSet,
  ) {}

  /** Counts every change to the local copy (a cached verdict of an older generation is stale). */
  get generation(): number {
    return this.changes;
  }

  /** Starts the watch and waits until the local copy holds every rule stored at the start. */
  async startWatching(): Promise<void> {
    this.stopWatch = await watchBucket(this.kv, (entry) => {
      if (entry.operation === "PUT") {
        this.remember(entry.key, {
          rule: entry.json<AuthorizationRuleRecord>(),
          revision: entry.revision,
        });
      } else {
        this.forget(entry.key);
      }
    });
  }

  stop(): void {
    this.stopWatch?.();
  }

  /**
   * The rule from the local copy; a miss reads the bucket (another broker may have just made
   * it, and the watch not shown it yet). A name found nowhere is not asked for again for
   * MISS_KEPT_MS, unless a change is seen meanwhile, and at most MISS_READS_PER_SECOND such
   * reads are made: tokens naming made-up rules cost their sender nothing, and must not
   * make the broker read the bucket on every call.
   */
  async find(scope: RuleScope, name: string): Promise<VersionedRule | undefined> {
    const key = ruleKey(scope, name);
    const known = this.rules.get(key);
    if (known) return known;
    const now = Date.now();
    const miss = this.misses.get(key);
    if (miss && miss.generation === this.changes && now - miss.at < MISS_KEPT_MS) return undefined;
    // Made-up names, each new: the bucket is read for at most MISS_READS_PER_SECOND of them.
    if (now - this.missWindow.start >= 1000) this.missWindow = { start: now, reads: 0 };
    if (++this.missWindow.reads > MISS_READS_PER_SECOND) return undefined;
    const generation = this.changes;
    const entry = await this.kv.get(key);
    if (entry?.operation !== "PUT") {
      if (this.misses.size >= MAX_MISSES) this.misses.clear();
      this.misses.set(key, { at: Date.now(), generation });
      return undefined;
    }
    const found = { rule: entry.json<AuthorizationRuleRecord>(), revision: entry.revision };
    this.remember(key, found);
    return found;
  }

  /** The rules of a scope from the local copy, sorted by name. */
  list(scope: RuleScope): AuthorizationRuleRecord[] {
    const prefix = scopePrefix(scope);
    return [...this.rules]
      .filter(([key]) => key.startsWith(prefix) && key.indexOf(".", prefix.length) === -1)
      .map(([, found]) => found.rule)
      .sort((a, b) => (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1));
  }

  /** Adds a rule; false when the scope has one of that name. */
  async create(scope: RuleScope, rule: AuthorizationRuleRecord): Promise<boolean> {
    const key = ruleKey(scope, rule.name);
    const revision = await this.compareAndSet.create(this.kv, key, JSON.stringify(rule));
    if (revision === undefined) return false;
    this.remember(key, { rule, revision });
    return true;
  }

  /** Compare-and-set: fails when the rule changed since `revision`. */
  async update(scope: RuleScope, rule: AuthorizationRuleRecord, revision: number): Promise<void> {
    const key = ruleKey(scope, rule.name);
    const next = await this.compareAndSet.update(key, JSON.stringify(rule), revision);
    this.remember(key, { rule, revision: next });
  }

  async remove(scope: RuleScope, name: string): Promise<void> {
    const key = ruleKey(scope, name);
    await this.kv.purge(key);
    this.forget(key);
  }

  /** Removes every rule of an entity's scope (when the entity is deleted or made anew). */
  async removeScope(scope: RuleScope): Promise<void> {
    for (const rule of this.list(scope)) await this.remove(scope, rule.name);
  }

  private remember(key: string, found: VersionedRule): void {
    const known = this.rules.get(key);
    // The watch may replay an older revision after a local write: keep the newer one.
    if (known && known.revision >= found.revision) return;
    this.rules.set(key, found);
    this.changes++;
  }

  private forget(key: string): void {
    if (this.rules.delete(key)) this.changes++;
  }
}

// Names may hold characters KV keys cannot, and "." splits KV keys: each part is base64url
// of the lower-cased text; the namespace's rules sit under "n", an entity's under "e.<entity>".
function scopePrefix(scope: RuleScope): string {
  return scope === "" ? "n." : `e.${encode(scope)}.`;
}

function ruleKey(scope: RuleScope, name: string): string {
  return `${scopePrefix(scope)}${encode(name.toLowerCase())}`;
}

function encode(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}
