import { useEffect, useRef } from 'preact/hooks';
import { formatCount, formatDateTime, formatShort } from './format';
import type { Entry } from './queries';

interface EntriesProps {
  entries: Entry[];
  totalCount: number | null;
  hasMore: boolean;
  loading: boolean;
  error: string | null;
  fresh: ReadonlySet<string>;
  hrefOf(entry: Entry): string;
  onOpen(entry: Entry): void;
  onLoadMore(): void;
}

/** Plain left clicks open the entry in place; other clicks (new tab, copy link) keep the link's own meaning. */
const plainClick = (event: MouseEvent) => event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;

export function Entries({ entries, totalCount, hasMore, loading, error, fresh, hrefOf, onOpen, onLoadMore }: EntriesProps) {
  const more = useRef<HTMLButtonElement>(null);
  // Infinite scroll: the "Load more" button loads the next page as soon as it scrolls into view.
  useEffect(() => {
    const button = more.current;
    if (!button || typeof IntersectionObserver === 'undefined') return;
    const observer = new IntersectionObserver((seen) => {
      if (seen.some((s) => s.isIntersecting) && window.scrollY > 0) onLoadMore();
    });
    observer.observe(button);
    return () => observer.disconnect();
  }, [hasMore, onLoadMore]);

  return (
    <section class="entries card" aria-labelledby="entries-title">
      <div class="entries-head">
        <h2 id="entries-title">Entries</h2>
        <span class="hint" aria-live="polite" data-testid="count">
          {totalCount === null ? '' : `Showing ${formatCount(entries.length)} of ${formatCount(totalCount)}`}
        </span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Action</th>
            <th scope="col">Resource</th>
            <th scope="col">Record</th>
            <th scope="col">Author</th>
            <th scope="col">Name</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.id} class={fresh.has(entry.id) ? 'fresh' : undefined} data-id={entry.id}>
              <td data-label="Time">
                <a
                  href={hrefOf(entry)}
                  title={formatDateTime(entry.createdAt)}
                  onClick={(event) => {
                    if (!plainClick(event)) return;
                    event.preventDefault();
                    onOpen(entry);
                  }}
                >
                  <time dateTime={entry.createdAt}>{formatShort(entry.createdAt)}</time>
                </a>
              </td>
              <td data-label="Action">
                <span class={`action action-${/^(create|update|delete)$/.test(entry.action) ? entry.action : 'other'}`}>{entry.action}</span>
              </td>
              <td data-label="Resource">{entry.resource}</td>
              <td data-label="Record">{entry.resourceId ?? '—'}</td>
              <td data-label="Author">{entry.author ? entry.author.name ?? entry.author.id : 'system'}</td>
              <td data-label="Name">{entry.name ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && entries.length === 0 && !error && <p class="empty">No entries match this filter.</p>}
      <div class="more">
        {hasMore ? (
          <button type="button" ref={more} onClick={onLoadMore} disabled={loading}>
            {loading ? 'Loading…' : 'Load more'}
          </button>
        ) : (
          loading && <span class="hint">Loading…</span>
        )}
      </div>
    </section>
  );
}
