import { InvalidArgumentError } from "../errors.js";
import { checkCharacterLimit } from "../limits/character-limits.js";

/** Characters (code points) of an entity path, without the dead-letter suffix. */
export const MAX_ENTITY_PATH_LENGTH = 260;

const DEAD_LETTER_SUFFIX = "/$deadletterqueue";
const NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,258}[A-Za-z0-9])?$/;

/** A parsed entity path: a queue itself or its dead-letter queue. */
export interface EntityAddress {
  /** The queue's path as the caller wrote it (without the dead-letter suffix). */
  parentPath: string;
  /** Case-insensitive identity of the queue. */
  parentKey: string;
  deadLetter: boolean;
  /** The full path as the caller wrote it, for messages. */
  path: string;
}

/** Checks a queue (or topic) name against semantics §1. */
export function validateEntityName(name: string, field: string): void {
  if (name.length === 0) {
    throw new InvalidArgumentError(
      field,
      `${field} is empty. Name an entity of 1 to 260 characters.`,
    );
  }
  checkCharacterLimit(name, MAX_ENTITY_PATH_LENGTH, field);
  if (!NAME_PATTERN.test(name) || name.includes("//")) {
    throw new InvalidArgumentError(
      field,
      `${field} "${name}" is not a valid entity name: use letters, digits, ".", "-", "_" and "/", start and end with a letter or digit, and no "//".`,
    );
  }
}

const SUBSCRIPTIONS_SEGMENT = /(^|\/)subscriptions\//i;

/**
 * Checks the name of a new queue or topic: a valid entity name that cannot be read as a
 * subscription path (`<topic>/subscriptions/<name>`).
 */
export function validateTopLevelName(name: string, field: string): void {
  validateEntityName(name, field);
  if (SUBSCRIPTIONS_SEGMENT.test(name)) {
    throw new InvalidArgumentError(
      field,
      `${field} "${name}" contains "subscriptions/", which names a topic's subscriptions in paths; choose another name.`,
    );
  }
}

const SUBSCRIPTION_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$/;

/** Checks a subscription name against semantics §1 (1-50 characters, no "/"). */
export function validateSubscriptionName(name: string, field: string): void {
  if (!SUBSCRIPTION_NAME.test(name)) {
    throw new InvalidArgumentError(
      field,
      `${field} "${name.slice(0, 60)}" is not a valid subscription name: 1 to 50 letters, digits, ".", "-" or "_", starting and ending with a letter or digit.`,
    );
  }
}

/** The path of a topic's subscription. */
export function subscriptionPath(topicName: string, name: string): string {
  return `${topicName}/subscriptions/${name}`;
}

/** Parses `orders` or `orders/$deadletterqueue` (suffix matched case-insensitively). */
export function parseEntityPath(path: string, field = "entity_path"): EntityAddress {
  const deadLetter = path.toLowerCase().endsWith(DEAD_LETTER_SUFFIX);
  const parentPath = deadLetter ? path.slice(0, -DEAD_LETTER_SUFFIX.length) : path;
  validateEntityName(parentPath, field);
  return { parentPath, parentKey: entityKey(parentPath), deadLetter, path };
}

/** Entities match case-insensitively; this is the form they are compared and stored by. */
export function entityKey(name: string): string {
  return name.toLowerCase();
}

export function deadLetterPath(parentPath: string): string {
  return `${parentPath}${DEAD_LETTER_SUFFIX}`;
}
