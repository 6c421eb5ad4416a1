import { formatBucket, formatCount, TIME_ZONE } from './format';
import type { Bucket } from './queries';
import type { GroupBy, Interval } from './view';

const PALETTE = ['#1d4ed8', '#b45309', '#047857', '#7c3aed', '#be123c'];
const OTHER = '#64748b';

interface ChartProps {
  buckets: Bucket[] | null;
  error: string | null;
  interval: Interval;
  groupBy: GroupBy;
  onInterval(interval: Interval): void;
  onGroupBy(groupBy: GroupBy): void;
  /** Narrows the time range to one bucket. */
  onSelect(bucket: Bucket): void;
}

/** Bars are buttons: clickable, focusable and read out with their count. Colours are CSSOM styles (the CSP allows no inline style attributes). */
export function Chart({ buckets, error, interval, groupBy, onInterval, onGroupBy, onSelect }: ChartProps) {
  const max = Math.max(1, ...(buckets ?? []).map((b) => b.count));
  const totals = new Map<string, number>();
  for (const bucket of buckets ?? []) for (const g of bucket.groups) totals.set(g.key, (totals.get(g.key) ?? 0) + g.count);
  const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, PALETTE.length).map(([key]) => key);
  const colour = (key: string) => PALETTE[top.indexOf(key)] ?? OTHER;
  const total = (buckets ?? []).reduce((sum, b) => sum + b.count, 0);

  return (
    <section class="chart card" aria-labelledby="chart-title">
      <div class="chart-head">
        <h2 id="chart-title">Activity</h2>
        <span class="hint">
          {buckets ? `${formatCount(total)} in range` : ''} · {TIME_ZONE}
        </span>
        <div class="chart-controls">
          <label for="c-interval">Interval</label>
          <select id="c-interval" value={interval} onChange={(e) => onInterval((e.target as HTMLSelectElement).value as Interval)}>
            <option value="HOUR">Hour</option>
            <option value="DAY">Day</option>
            <option value="WEEK">Week</option>
            <option value="MONTH">Month</option>
          </select>
          <label for="c-group">Split by</label>
          <select id="c-group" value={groupBy} onChange={(e) => onGroupBy((e.target as HTMLSelectElement).value as GroupBy)}>
            <option value="">Nothing</option>
            <option value="ACTION">Action</option>
            <option value="RESOURCE">Resource</option>
            <option value="AUTHOR">Author</option>
          </select>
        </div>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {buckets && buckets.length > 0 && (
        <ol class="bars" aria-label="Entries per interval; choose a bar to narrow the time range">
          {buckets.map((bucket) => {
            const label = `${formatBucket(bucket.start, interval)}: ${formatCount(bucket.count)} ${bucket.count === 1 ? 'entry' : 'entries'}`;
            return (
              <li key={bucket.start}>
                <button type="button" class="bar" aria-label={label} title={label} onClick={() => onSelect(bucket)}>
                  <span class="stack" style={{ height: `${(bucket.count / max) * 100}%` }}>
                    {groupBy && bucket.groups.length > 0 ? (
                      bucket.groups.map((g) => <span key={g.key} class="segment" style={{ flexGrow: g.count, background: colour(g.key) }} />)
                    ) : (
                      <span class="segment" style={{ flexGrow: 1 }} />
                    )}
                  </span>
                </button>
              </li>
            );
          })}
        </ol>
      )}
      {buckets && buckets.length > 0 && (
        <div class="axis" aria-hidden="true">
          <span>{formatBucket(buckets[0]!.start, interval)}</span>
          <span>{formatBucket(buckets[buckets.length - 1]!.start, interval)}</span>
        </div>
      )}
      {groupBy && top.length > 0 && (
        <ul class="legend" aria-label="Legend">
          {top.map((key) => (
            <li key={key}>
              <span class="swatch" style={{ background: colour(key) }} />
              {key || '(no author)'}
            </li>
          ))}
          {totals.size > top.length && (
            <li>
              <span class="swatch" style={{ background: OTHER }} />
              other
            </li>
          )}
        </ul>
      )}
    </section>
  );
}
