/**
 * Paging of the admin List calls (queues, topics, subscriptions): entities in order of their
 * registry keys, a page starting after the key its token names.
 */
import type { EntityKind, EntityRecord } from "../../store/entity-record.js";
import type { Store } from "../../store/store.js";
import { type ErrorSubject, InvalidArgumentError } from "../errors.js";
import { checkCharacterLimit } from "../limits/character-limits.js";

const MAX_PAGE_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 100;
/** Longer than any next_page_token a List call returns (a key or a session id's token). */
export const MAX_PAGE_TOKEN_LENGTH = 1024;

export interface EntityPage<V> {
  views: V[];
  /** The key of the page's last entity when more follow, else "". */
  nextPageToken: string;
}

/** The page size a request asks for (0: the default); refuses one out of range. */
export function checkedPageSize(pageSize: number): number {
  if (pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
    throw new InvalidArgumentError(
      "page_size",
      `page_size must be between 0 and ${MAX_PAGE_SIZE}.`,
    );
  }
  return pageSize || DEFAULT_PAGE_SIZE;
}

/** Refuses a page token longer than any the List calls return, before it is used. */
export function checkPageToken(pageToken: string, subject: ErrorSubject = {}): void {
  checkCharacterLimit(pageToken, MAX_PAGE_TOKEN_LENGTH, "page_token", subject);
}

/**
 * The page of `sorted` (ordered by `keyOf`) after `pageToken`, its views made in parallel.
 * An entity whose view is undefined (gone meanwhile) is left out of the page.
 */
export async function pageAfter<T, V>(
  sorted: readonly T[],
  keyOf: (item: T) => string,
  pageToken: string,
  size: number,
  view: (item: T) => Promise<V | undefined>,
): Promise<EntityPage<V>> {
  const after = sorted.filter((item) => keyOf(item) > pageToken);
  const page = after.slice(0, size);
  const views: (V | undefined)[] = await Promise.all(page.map(view));
  const last = page.at(-1);
  return {
    views: views.filter((v): v is V => v !== undefined),
    nextPageToken: after.length > size && last !== undefined ? keyOf(last) : "",
  };
}

/** A page of the registry's entities of one kind (queues or topics), in order of their keys. */
export function pageOfKind<V>(
  store: Store,
  kind: EntityKind,
  pageSize: number,
  pageToken: string,
  view: (record: EntityRecord) => Promise<V>,
): Promise<EntityPage<V>> {
  const size = checkedPageSize(pageSize);
  checkPageToken(pageToken);
  return pageAfter(
    store.entities.keys(kind),
    (key) => key,
    pageToken,
    size,
    async (key) => {
      const found = await store.entities.get(key);
      if (found?.record.kind !== kind) return undefined;
      // An entity deleted (or still being created) meanwhile is left out of the page.
      return view(found.record).catch(() => undefined);
    },
  );
}
