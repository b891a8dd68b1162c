import { createHmac, timingSafeEqual } from "node:crypto";
import { MissingRightError, TokenExpiredError, TokenInvalidError } from "../broker/errors.js";
import type {
  AuthorizationRuleRecord,
  AuthorizationRuleStore,
  RuleScope,
} from "../store/authorization-rule-store.js";
import { grants, type Right } from "./access-rights.js";
import { covers, ownerEntityOf } from "./resource-path.js";
import { parseSasToken } from "./sas-token-parser.js";

/** What a verified token lets its bearer do. */
export interface Principal {
  /** The rights of the rule that signed it. */
  rights: readonly Right[];
  /** Where that rule lives: "" (namespace) or its queue or topic. */
  ruleScope: RuleScope;
  /** The token's resource path: it covers this and what is below it. */
  resourcePath: string;
  expiresAtMs: number;
}

interface CachedVerdict {
  principal: Principal;
  /** The rule store's generation when verified: any rule change makes the verdict stale. */
  generation: number;
}

/** Verified tokens kept; a client reuses one token for an hour, so few are live at a time. */
const MAX_CACHED_TOKENS = 10_000;

/**
 * Checks tokens against the authorization rules. A token's verdict is cached until it
 * expires or any rule changes, so a call with a known token costs one map lookup, not an
 * HMAC; only valid tokens are cached, so random ones cannot crowd them out.
 */
export class TokenVerifier {
  private readonly verdicts = new Map<string, CachedVerdict>();

  constructor(private readonly rules: AuthorizationRuleStore) {}

  /**
   * The principal of a token verified before (no await: the common case), or undefined when
   * it has to be verified afresh; throws TokenExpiredError once it has expired.
   */
  cached(token: string, nowMs = Date.now()): Principal | undefined {
    const cached = this.verdicts.get(token);
    if (!cached || cached.generation !== this.rules.generation) return undefined;
    if (cached.principal.expiresAtMs <= nowMs) {
      this.verdicts.delete(token);
      throw new TokenExpiredError(cached.principal.expiresAtMs / 1000);
    }
    return cached.principal;
  }

  /** The token's principal; throws TokenInvalidError or TokenExpiredError. */
  async verify(token: string, nowMs = Date.now()): Promise<Principal> {
    const known = this.cached(token, nowMs);
    if (known) return known;
    const generation = this.rules.generation;
    const principal = await this.verifyAfresh(token);
    if (principal.expiresAtMs <= nowMs) throw new TokenExpiredError(principal.expiresAtMs / 1000);
    if (this.verdicts.size >= MAX_CACHED_TOKENS) {
      // Oldest first: a Map iterates in insertion order.
      const oldest = this.verdicts.keys().next().value;
      if (oldest !== undefined) this.verdicts.delete(oldest);
    }
    this.verdicts.set(token, { principal, generation });
    return principal;
  }

  private async verifyAfresh(token: string): Promise<Principal> {
    const parsed = parseSasToken(token);
    const owner = ownerEntityOf(parsed.resourcePath);
    // A token for an entity may be signed by a rule of that queue or topic, or of the namespace.
    const scopes: RuleScope[] = owner === "" ? [""] : [owner, ""];
    let named = false;
    for (const scope of scopes) {
      const found = await this.rules.find(scope, parsed.keyName);
      if (!found) continue;
      named = true;
      if (signedBy(found.rule, `${parsed.signedResource}\n${parsed.expiry}`, parsed.signature)) {
        return {
          rights: found.rule.rights,
          ruleScope: scope,
          resourcePath: parsed.resourcePath,
          expiresAtMs: parsed.expiresAtSeconds * 1000,
        };
      }
    }
    throw new TokenInvalidError(
      named
        ? "its signature matches neither key of its rule (skn)"
        : "skn names no authorization rule for its resource (sr)",
    );
  }
}

function signedBy(rule: AuthorizationRuleRecord, signed: string, signature: Buffer): boolean {
  for (const key of [rule.primaryKey, rule.secondaryKey]) {
    const expected = createHmac("sha256", key).update(signed).digest();
    if (timingSafeEqual(expected, signature)) return true;
  }
  return false;
}

/**
 * Throws MissingRightError unless `principal` may do what needs `right` on `path` (a
 * normalized resource path; "" is the namespace): its token covers the path, its rule grants
 * the right, and an entity's rule only ever reaches that entity.
 */
export function requireRight(
  principal: Principal,
  right: Right,
  path: string,
  shownPath: string,
): void {
  const allowed =
    grants(principal.rights, right) &&
    covers(principal.resourcePath, path) &&
    (principal.ruleScope === "" || ownerEntityOf(path) === principal.ruleScope);
  if (!allowed) throw new MissingRightError(right, shownPath);
}
