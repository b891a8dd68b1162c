/**
 * Resource paths as authorization compares them: an entity path, lower-cased (entity names
 * match case-insensitively), without leading or trailing "/"; "" is the whole namespace.
 */

const SUBSCRIPTIONS = "/subscriptions/";
const DEAD_LETTER = "/$deadletterqueue";

export function normalizeResourcePath(path: string): string {
  let start = 0;
  let end = path.length;
  while (start < end && path.charCodeAt(start) === 47) start++;
  while (end > start && path.charCodeAt(end - 1) === 47) end--;
  return path.slice(start, end).toLowerCase();
}

/**
 * The queue or topic a normalized path belongs to, whose entity-level rules apply to it:
 * "orders/$deadletterqueue" → "orders", "events/subscriptions/audit" → "events".
 */
export function ownerEntityOf(path: string): string {
  const subscriptions = path.indexOf(SUBSCRIPTIONS);
  if (subscriptions > 0) return path.slice(0, subscriptions);
  return path.endsWith(DEAD_LETTER) ? path.slice(0, -DEAD_LETTER.length) : path;
}

/** Whether `scope` (a token's resource path) covers `path`: itself or anything below it. */
export function covers(scope: string, path: string): boolean {
  return (
    scope === "" ||
    path === scope ||
    (path.length > scope.length && path.startsWith(scope) && path.charCodeAt(scope.length) === 47)
  );
}

/** The path part of a resource URI ("sb://host:port/orders" → "orders"), normalized. */
export function resourcePathOfUri(uri: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(uri);
  return normalizeResourcePath(scheme ? uri.slice(scheme[0].length) : uri);
}
