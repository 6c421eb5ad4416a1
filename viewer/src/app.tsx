import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, probeExport, request, serverFeatures, storedToken, storeToken } from './api';
import { Chart } from './chart';
import { Detail } from './detail';
import { Entries } from './entries';
import { ExportButtons } from './export';
import { Filters } from './filters';
import { TIME_ZONE } from './format';
import { useLive, type LiveStatus } from './live';
import { CHART, HEAD, LIST, type Bucket, type Entry, type Page } from './queries';
import { Share } from './share';
import { SignIn } from './signin';
import { EMPTY_VIEW, filterOf, intervalOf, reachesNow, readView, writeView, type View } from './view';

const PAGE_SIZE = 50;
const FEATURES = serverFeatures();
const EXTRA_FIELDS = ['sequence', 'hash', 'previousHash'].filter((f) => FEATURES.has(f));

/**
 * An app may embed the viewer in a same-origin frame and hand it a (viewer) token by message, so the
 * token never appears in a URL: `frame.contentWindow.postMessage({ type: 'auditql:token', token }, origin)`
 * once the frame has posted `{ type: 'auditql:ready' }`.
 */
function useEmbeddedToken(onToken: (token: string) => void) {
  useEffect(() => {
    if (window.parent === window) return;
    const onMessage = (event: MessageEvent) => {
      if (event.source !== window.parent || event.origin !== location.origin) return;
      const data = event.data as { type?: unknown; token?: unknown } | null;
      if (data?.type === 'auditql:token' && typeof data.token === 'string' && data.token) onToken(data.token);
    };
    window.addEventListener('message', onMessage);
    window.parent.postMessage({ type: 'auditql:ready' }, location.origin);
    return () => window.removeEventListener('message', onMessage);
  }, []);
}

export function App() {
  const [token, setToken] = useState<string | null>(storedToken);
  const [message, setMessage] = useState<string | null>(null);
  const signIn = useCallback((value: string) => {
    storeToken(value);
    setMessage(null);
    setToken(value);
  }, []);
  const signOut = useCallback((reason: string | null) => {
    storeToken(null);
    setMessage(reason);
    setToken(null);
  }, []);
  useEmbeddedToken(signIn);
  if (!token) return <SignIn onSignIn={signIn} message={message} />;
  return <Viewer key={token} token={token} onSignOut={signOut} />;
}

const STATUS_TEXT: Record<LiveStatus, string> = {
  off: 'Starting…',
  paused: 'Paused',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  error: 'Live stopped',
};

interface ListState {
  entries: Entry[];
  totalCount: number | null;
  endCursor: string | null;
  hasMore: boolean;
  loading: boolean;
  error: string | null;
}

const EMPTY_LIST: ListState = { entries: [], totalCount: null, endCursor: null, hasMore: false, loading: true, error: null };

function Viewer({ token, onSignOut }: { token: string; onSignOut(reason: string | null): void }) {
  const [view, setView] = useState<View>(() => readView(location.search));
  const navigate = useCallback((next: View) => {
    history.pushState(null, '', `${location.pathname}${writeView(next)}`);
    setView(next);
  }, []);
  useEffect(() => {
    const onPop = () => setView(readView(location.search));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  const onAuthError = useCallback((error: ApiError) => onSignOut(`Your session ended (${error.message}). Sign in again.`), [onSignOut]);
  const fail = useCallback(
    (failure: unknown): string | null => {
      if (failure instanceof DOMException && failure.name === 'AbortError') return null;
      if (failure instanceof ApiError && failure.code === 'UNAUTHENTICATED') {
        onAuthError(failure);
        return null;
      }
      return (failure as Error).message;
    },
    [onAuthError],
  );

  // Preset ranges ("last 24 hours") are fixed when the filter is applied, so paging stays consistent.
  const filterParts = [view.resource, view.resourceId, view.action, view.authorId, view.transactionId, view.search, view.range, view.from, view.to];
  const filter = useMemo(() => filterOf(view, Date.now()), filterParts);
  const filterKey = JSON.stringify(filter);

  // --- entries -------------------------------------------------------------------------------------
  const [list, setList] = useState<ListState>(EMPTY_LIST);
  const [fresh, setFresh] = useState<ReadonlySet<string>>(new Set());
  /** The position the live stream resumes after. */
  const after = useRef<string | null>(null);
  /** The filter whose first page has loaded: the live stream starts only after it, from its newest entry. */
  const [readyFor, setReadyFor] = useState<string | null>(null);
  const loadingMore = useRef(false);

  useEffect(() => {
    const abort = new AbortController();
    setList(EMPTY_LIST);
    setFresh(new Set());
    setReadyFor(null);
    after.current = null;
    (async () => {
      // The newest position in the log is read before the page: whatever commits after it reaches us
      // through the live stream's replay, even when the page is empty.
      const head = await request<{ auditLogs: Page }>(token, HEAD, {}, abort.signal);
      const data = await request<{ auditLogs: Page }>(token, LIST, { filter, first: PAGE_SIZE }, abort.signal);
      const page = data.auditLogs;
      after.current = page.edges[0]?.cursor ?? head.auditLogs.edges[0]?.cursor ?? null;
      setList({ entries: page.edges.map((e) => e.node), totalCount: page.totalCount, endCursor: page.pageInfo.endCursor, hasMore: page.pageInfo.hasNextPage, loading: false, error: null });
      setReadyFor(filterKey);
    })().catch((failure: unknown) => {
      const message = fail(failure);
      if (message !== null) setList({ ...EMPTY_LIST, loading: false, error: message });
    });
    return () => abort.abort();
  }, [token, filterKey]);

  const loadMore = useCallback(() => {
    if (loadingMore.current || !list.hasMore || !list.endCursor) return;
    loadingMore.current = true;
    setList((current) => ({ ...current, loading: true }));
    request<{ auditLogs: Page }>(token, LIST, { filter, first: PAGE_SIZE, after: list.endCursor })
      .then(({ auditLogs: page }) =>
        setList((current) => {
          const seen = new Set(current.entries.map((e) => e.id));
          const added = page.edges.map((e) => e.node).filter((e) => !seen.has(e.id));
          return { ...current, entries: [...current.entries, ...added], endCursor: page.pageInfo.endCursor, hasMore: page.pageInfo.hasNextPage, loading: false };
        }),
      )
      .catch((failure: unknown) => setList((current) => ({ ...current, loading: false, error: fail(failure) })))
      .finally(() => {
        loadingMore.current = false;
      });
  }, [token, filterKey, list.hasMore, list.endCursor]);

  // --- chart ---------------------------------------------------------------------------------------
  const interval = intervalOf(view, Date.now());
  const [buckets, setBuckets] = useState<Bucket[] | null>(null);
  const [chartError, setChartError] = useState<string | null>(null);
  const [chartTick, setChartTick] = useState(0);
  const chartTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => {
    const abort = new AbortController();
    setChartError(null);
    request<{ activityChart: Bucket[] }>(token, CHART, { filter, interval, timezone: TIME_ZONE, groupBy: view.groupBy || null }, abort.signal)
      .then((data) => setBuckets(data.activityChart))
      .catch((failure: unknown) => {
        const message = fail(failure);
        if (message !== null) {
          setBuckets(null);
          setChartError(message);
        }
      });
    return () => abort.abort();
  }, [token, filterKey, interval, view.groupBy, chartTick]);
  useEffect(() => () => clearTimeout(chartTimer.current), []);

  // --- live ----------------------------------------------------------------------------------------
  const [paused, setPaused] = useState(false);
  const live = useLive({
    token,
    filter,
    enabled: readyFor === filterKey && !paused && reachesNow(view),
    paused,
    after,
    onAuthError,
    onEntry: (entry) => {
      setList((current) => {
        if (current.entries.some((e) => e.id === entry.id)) return current;
        return { ...current, entries: [entry, ...current.entries], totalCount: (current.totalCount ?? 0) + 1 };
      });
      setFresh((current) => new Set(current).add(entry.id));
      // Redraw the chart once a burst has settled, not once per entry.
      clearTimeout(chartTimer.current);
      chartTimer.current = setTimeout(() => setChartTick((n) => n + 1), 1000);
    },
  });
  const liveStatus: LiveStatus = !reachesNow(view) ? 'off' : live.status;

  // --- export --------------------------------------------------------------------------------------
  const [canExport, setCanExport] = useState(false);
  useEffect(() => {
    void probeExport().then(setCanExport);
  }, []);

  const hrefOf = (entry: Entry) => `${location.pathname}${writeView({ ...view, entry: entry.id })}`;

  return (
    <>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true" />
          <h1>Audit log</h1>
        </div>
        <div class="status">
          <span class={`live-pill ${liveStatus}`} role="status" aria-live="polite" data-testid="live-status" title={live.error ?? undefined}>
            <span class="dot" aria-hidden="true" />
            {reachesNow(view) ? STATUS_TEXT[liveStatus] : 'Live off (past range)'}
          </span>
          <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)} disabled={!reachesNow(view)}>
            {paused ? 'Resume' : 'Pause'}
          </button>
          {FEATURES.has('viewerToken') && <Share token={token} filter={filter} />}
          <button type="button" onClick={() => onSignOut(null)}>
            Sign out
          </button>
        </div>
      </header>
      <main class="layout">
        <Filters view={view} onApply={navigate} />
        <Chart
          buckets={buckets}
          error={chartError}
          interval={interval}
          groupBy={view.groupBy}
          onInterval={(next) => navigate({ ...view, interval: next })}
          onGroupBy={(next) => navigate({ ...view, groupBy: next })}
          onSelect={(bucket) => {
            const from = Date.parse(bucket.start);
            const to = Date.parse(bucket.end);
            const narrower = interval === 'MONTH' ? 'DAY' : interval === 'WEEK' ? 'DAY' : 'HOUR';
            navigate({ ...view, range: 'custom', from: new Date(from).toISOString(), to: new Date(to).toISOString(), interval: narrower, entry: '' });
          }}
        />
        {canExport && <ExportButtons token={token} filter={filter} />}
        <Entries
          entries={list.entries}
          totalCount={list.totalCount}
          hasMore={list.hasMore}
          loading={list.loading}
          error={list.error}
          fresh={fresh}
          hrefOf={hrefOf}
          onOpen={(entry) => navigate({ ...view, entry: entry.id })}
          onLoadMore={loadMore}
        />
      </main>
      {view.entry && (
        <Detail
          key={view.entry}
          token={token}
          id={view.entry}
          extra={EXTRA_FIELDS}
          onClose={() => navigate({ ...view, entry: '' })}
          onTransaction={(transactionId) => navigate({ ...EMPTY_VIEW, transactionId, range: 'all', groupBy: view.groupBy })}
          onAuthError={onAuthError}
        />
      )}
    </>
  );
}
