/** Times are shown in the browser's own time zone; the chart asks the server for buckets in it too. */
export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const shortTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
const count = new Intl.NumberFormat();

export const formatDateTime = (iso: string) => dateTime.format(new Date(iso));
export const formatShort = (iso: string) => shortTime.format(new Date(iso));
export const formatCount = (n: number) => count.format(n);

const BUCKET_LABEL: Record<string, Intl.DateTimeFormatOptions> = {
  HOUR: { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' },
  DAY: { month: 'short', day: 'numeric' },
  WEEK: { month: 'short', day: 'numeric' },
  MONTH: { year: 'numeric', month: 'short' },
};

export function formatBucket(iso: string, interval: string): string {
  return new Intl.DateTimeFormat(undefined, BUCKET_LABEL[interval]).format(new Date(iso));
}

/** A JSON value as one short line, for tables and diffs. */
export function formatValue(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** `datetime-local` inputs speak local wall time without a zone. */
export function toLocalInput(iso: string): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function fromLocalInput(value: string): string {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}
