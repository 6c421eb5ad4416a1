/**
 * Everything a view is made of lives in the URL's query string, so a view can be bookmarked and shared.
 * Credentials never do.
 */
export type RangeKey = '1h' | '24h' | '7d' | '30d' | 'all' | 'custom';
export type Interval = 'HOUR' | 'DAY' | 'WEEK' | 'MONTH';
export type GroupBy = '' | 'ACTION' | 'RESOURCE' | 'AUTHOR';

export interface View {
  resource: string;
  resourceId: string;
  action: string;
  authorId: string;
  transactionId: string;
  search: string;
  range: RangeKey;
  /** ISO instants, for the custom range. */
  from: string;
  to: string;
  /** '' = chosen from the range. */
  interval: Interval | '';
  groupBy: GroupBy;
  /** The entry shown in the detail dialog. */
  entry: string;
}

export const RANGES: Array<{ key: RangeKey; label: string; ms?: number }> = [
  { key: '1h', label: 'Last hour', ms: 3_600_000 },
  { key: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { key: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { key: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 },
  { key: 'all', label: 'All time' },
  { key: 'custom', label: 'Custom range' },
];

const PARAMS: Record<keyof View, string> = {
  resource: 'resource',
  resourceId: 'record',
  action: 'action',
  authorId: 'author',
  transactionId: 'tx',
  search: 'q',
  range: 'range',
  from: 'from',
  to: 'to',
  interval: 'interval',
  groupBy: 'groupBy',
  entry: 'entry',
};

export const EMPTY_VIEW: View = {
  resource: '',
  resourceId: '',
  action: '',
  authorId: '',
  transactionId: '',
  search: '',
  range: '7d',
  from: '',
  to: '',
  interval: '',
  groupBy: '',
  entry: '',
};

export function readView(search: string): View {
  const params = new URLSearchParams(search);
  const view = { ...EMPTY_VIEW };
  for (const key of Object.keys(PARAMS) as Array<keyof View>) {
    const value = params.get(PARAMS[key]);
    if (value !== null) (view as Record<keyof View, string>)[key] = value;
  }
  if (!RANGES.some((r) => r.key === view.range)) view.range = EMPTY_VIEW.range;
  if (!['', 'HOUR', 'DAY', 'WEEK', 'MONTH'].includes(view.interval)) view.interval = '';
  if (!['', 'ACTION', 'RESOURCE', 'AUTHOR'].includes(view.groupBy)) view.groupBy = '';
  return view;
}

export function writeView(view: View): string {
  const params = new URLSearchParams();
  for (const key of Object.keys(PARAMS) as Array<keyof View>) {
    if (view[key] !== EMPTY_VIEW[key] && !(key === 'range' && view.range === EMPTY_VIEW.range)) params.set(PARAMS[key], view[key]);
  }
  if (view.range !== 'custom') {
    params.delete('from');
    params.delete('to');
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

const list = (text: string) => {
  const values = text
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  return values.length ? values : undefined;
};
const single = (text: string) => (text.trim() ? text.trim() : undefined);

export interface GraphQLFilter {
  resource?: string[];
  resourceId?: string;
  action?: string[];
  authorId?: string[];
  transactionId?: string;
  search?: string;
  from?: string;
  to?: string;
}

/** The `AuditLogFilter` for a view; preset ranges count back from `now`. */
export function filterOf(view: View, now: number): GraphQLFilter {
  const filter: GraphQLFilter = {
    resource: list(view.resource),
    resourceId: single(view.resourceId),
    action: list(view.action),
    authorId: list(view.authorId),
    transactionId: single(view.transactionId),
    search: single(view.search),
  };
  const preset = RANGES.find((r) => r.key === view.range);
  if (preset?.ms) filter.from = new Date(now - preset.ms).toISOString();
  if (view.range === 'custom') {
    if (view.from) filter.from = view.from;
    if (view.to) filter.to = view.to;
  }
  for (const key of Object.keys(filter) as Array<keyof GraphQLFilter>) if (filter[key] === undefined) delete filter[key];
  return filter;
}

/** An interval that gives a readable number of bars for the range. */
export function intervalOf(view: View, now: number): Interval {
  if (view.interval) return view.interval;
  if (view.range === '1h' || view.range === '24h') return 'HOUR';
  if (view.range === '7d' || view.range === '30d') return 'DAY';
  if (view.range === 'all') return 'MONTH';
  const from = view.from ? Date.parse(view.from) : now - 30 * 86_400_000;
  const to = view.to ? Date.parse(view.to) : now;
  const span = to - from;
  if (span <= 3 * 86_400_000) return 'HOUR';
  if (span <= 90 * 86_400_000) return 'DAY';
  if (span <= 2 * 365 * 86_400_000) return 'WEEK';
  return 'MONTH';
}

/** Live entries only make sense while the range reaches the present. */
export function reachesNow(view: View): boolean {
  return view.range !== 'custom' || !view.to || Date.parse(view.to) > Date.now();
}
