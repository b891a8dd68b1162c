import { randomBytes } from "node:crypto";
import { validateTopLevelName } from "../broker/entities/entity-path.js";
import {
  EntityAlreadyExistsError,
  EntityNotFoundError,
  InvalidArgumentError,
} from "../broker/errors.js";
import type {
  AuthorizationRuleRecord,
  AuthorizationRuleStore,
  RuleScope,
  VersionedRule,
} from "../store/authorization-rule-store.js";
import type { Store } from "../store/store.js";
import type { Right } from "./access-rights.js";
import { normalizeResourcePath } from "./resource-path.js";

/** Service Bus allows 12 shared access rules per namespace and per entity. */
export const MAX_RULES_PER_SCOPE = 12;
const RULE_NAME = /^[A-Za-z0-9._-]{1,256}$/;
const KEY = /^[A-Za-z0-9+/=_-]{32,256}$/;
const UPDATE_ATTEMPTS = 5;

export type KeyChoice = "primary" | "secondary";

/** A new key: 32 random bytes in base64, as Service Bus makes them. */
export function generateKey(): string {
  return randomBytes(32).toString("base64");
}

/** Checks a key given by a user (a request field, or SESSIONBUS_ROOT_KEY). */
export function validateKey(key: string, field: string): void {
  if (!KEY.test(key)) {
    throw new InvalidArgumentError(
      field,
      `${field} must be 32 to 256 characters of base64 (letters, digits, "+", "/", "=", "-", "_"); leave it empty to have one generated.`,
    );
  }
}

/**
 * Shared access authorization rules of the namespace and of queues and topics: what the
 * AuthorizationRule RPCs do. The caller's Manage right was checked before.
 */
export class AuthorizationRuleAdmin {
  private readonly rules: AuthorizationRuleStore;

  constructor(private readonly store: Store) {
    this.rules = store.authorizationRules;
  }

  async create(
    entityPath: string,
    name: string,
    rights: readonly Right[],
    keys: { primaryKey: string; secondaryKey: string },
  ): Promise<AuthorizationRuleRecord> {
    const scope = await this.scopeOf(entityPath);
    validateName(name);
    const checked = validateRights(rights);
    for (const [field, key] of [
      ["primary_key", keys.primaryKey],
      ["secondary_key", keys.secondaryKey],
    ] as const) {
      if (key !== "") validateKey(key, field);
    }
    if (this.rules.list(scope).length >= MAX_RULES_PER_SCOPE) {
      throw new InvalidArgumentError(
        "name",
        `${describe(entityPath)} has ${MAX_RULES_PER_SCOPE} authorization rules, the most it may have; delete one first.`,
        { entityPath },
      );
    }
    const now = Date.now();
    const rule: AuthorizationRuleRecord = {
      name,
      rights: checked,
      primaryKey: keys.primaryKey || generateKey(),
      secondaryKey: keys.secondaryKey || generateKey(),
      createdMs: now,
      updatedMs: now,
    };
    if (!(await this.rules.create(scope, rule))) {
      throw new EntityAlreadyExistsError(ruleLabel(entityPath, name));
    }
    return rule;
  }

  async get(entityPath: string, name: string): Promise<AuthorizationRuleRecord> {
    return (await this.find(entityPath, name)).found.rule;
  }

  async list(entityPath: string): Promise<AuthorizationRuleRecord[]> {
    return this.rules.list(await this.scopeOf(entityPath));
  }

  updateRights(entityPath: string, name: string, rights: readonly Right[]) {
    const checked = validateRights(rights);
    return this.change(entityPath, name, (rule) => ({ ...rule, rights: checked }));
  }

  regenerateKey(entityPath: string, name: string, which: KeyChoice, value: string) {
    if (value !== "") validateKey(value, "value");
    const key = value || generateKey();
    return this.change(entityPath, name, (rule) =>
      which === "primary" ? { ...rule, primaryKey: key } : { ...rule, secondaryKey: key },
    );
  }

  async delete(entityPath: string, name: string): Promise<void> {
    const { scope, found } = await this.find(entityPath, name);
    await this.rules.remove(scope, found.rule.name);
  }

  /** Applies `edit` with compare-and-set, read again when another writer came first. */
  private async change(
    entityPath: string,
    name: string,
    edit: (rule: AuthorizationRuleRecord) => AuthorizationRuleRecord,
  ): Promise<AuthorizationRuleRecord> {
    for (let attempt = 1; ; attempt++) {
      const { scope, found } = await this.find(entityPath, name);
      const next = { ...edit(found.rule), updatedMs: Date.now() };
      try {
        await this.rules.update(scope, next, found.revision);
        return next;
      } catch (error) {
        if (attempt >= UPDATE_ATTEMPTS) throw error;
      }
    }
  }

  private async find(
    entityPath: string,
    name: string,
  ): Promise<{ scope: RuleScope; found: VersionedRule }> {
    const scope = await this.scopeOf(entityPath);
    validateName(name);
    const found = await this.rules.find(scope, name);
    if (!found) throw new EntityNotFoundError(ruleLabel(entityPath, name));
    return { scope, found };
  }

  /** "" for the namespace; an existing queue or topic's key, else NOT_FOUND. */
  private async scopeOf(entityPath: string): Promise<RuleScope> {
    if (entityPath === "") return "";
    validateTopLevelName(entityPath, "entity_path");
    const scope = normalizeResourcePath(entityPath);
    const found = await this.store.entities.get(scope);
    if (found?.record.kind !== "queue" && found?.record.kind !== "topic") {
      throw new EntityNotFoundError(entityPath);
    }
    return scope;
  }
}

function validateName(name: string): void {
  if (!RULE_NAME.test(name)) {
    throw new InvalidArgumentError(
      "name",
      "An authorization rule's name is 1 to 256 letters, digits, '.', '-' or '_'.",
    );
  }
}

function validateRights(rights: readonly Right[]): Right[] {
  const unique = [...new Set(rights)];
  if (unique.length === 0) {
    throw new InvalidArgumentError(
      "rights",
      "Give a rule at least one right: MANAGE, SEND or LISTEN.",
    );
  }
  return unique;
}

function describe(entityPath: string): string {
  return entityPath === "" ? "The namespace" : `"${entityPath}"`;
}

function ruleLabel(entityPath: string, name: string): string {
  return entityPath === ""
    ? `authorization rule "${name}"`
    : `${entityPath} authorization rule "${name}"`;
}
