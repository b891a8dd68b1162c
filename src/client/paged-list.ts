/** The admin List calls' paging, hidden behind one async iteration. */

/**
 * Every item of a paged List call: `fetchPage` gets the page after a token ("" for the
 * first), and the next page is fetched only once the previous one has been iterated.
 */
export async function* pagedList<P extends { nextPageToken: string }, T>(
  fetchPage: (pageToken: string) => Promise<P>,
  itemsOf: (page: P) => readonly T[],
): AsyncGenerator<T> {
  let pageToken = "";
  do {
    const page = await fetchPage(pageToken);
    yield* itemsOf(page);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
}
