/** Refresh, previous and next of a paged list (see usePeekPages). */
export function PagerButtons({
  pages,
}: {
  pages: { reload: () => void; previous?: () => void; next?: () => void; pageNumber: number };
}) {
  return (
    <>
      <button type="button" onClick={pages.reload}>
        Refresh
      </button>
      <button type="button" disabled={!pages.previous} onClick={pages.previous}>
        ‹ Previous
      </button>
      <span>page {pages.pageNumber}</span>
      <button type="button" disabled={!pages.next} onClick={pages.next}>
        Next ›
      </button>
    </>
  );
}
