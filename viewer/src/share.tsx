import { useState } from 'preact/hooks';
import { request } from './api';
import { CREATE_VIEWER_TOKEN } from './queries';
import type { GraphQLFilter } from './view';

const DURATIONS = [
  { seconds: 900, label: '15 minutes' },
  { seconds: 3600, label: '1 hour' },
  { seconds: 86_400, label: '24 hours' },
];

/**
 * Mints a read-only viewer token limited to the current filter (admins only), for someone who should see
 * this view and nothing else. The token is shown here to copy; it is never put in a link.
 */
export function Share({ token, filter }: { token: string; filter: GraphQLFilter }) {
  const [open, setOpen] = useState(false);
  const [seconds, setSeconds] = useState(3600);
  const [minted, setMinted] = useState<{ token: string; expiresAt: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  // A search cannot bound a token (two searches do not combine into one); the rest of the filter does.
  const shared = { ...filter };
  delete shared.search;

  const mint = async (event: Event) => {
    event.preventDefault();
    setError(null);
    try {
      const data = await request<{ createViewerToken: { token: string; expiresAt: string } }>(token, CREATE_VIEWER_TOKEN, { filter: shared, expiresIn: seconds });
      setMinted(data.createViewerToken);
    } catch (failure) {
      setError((failure as Error).message);
    }
  };

  return (
    <div class="share">
      <button type="button" aria-expanded={open} aria-controls="share-panel" onClick={() => setOpen(!open)}>
        Share view
      </button>
      {open && (
        <form id="share-panel" class="card share-panel" onSubmit={mint}>
          <p class="hint">A read-only token that sees only entries matching the current filter (search excepted).</p>
          <label for="share-expiry">Valid for</label>
          <select id="share-expiry" value={seconds} onChange={(e) => setSeconds(Number((e.target as HTMLSelectElement).value))}>
            {DURATIONS.map((d) => (
              <option key={d.seconds} value={d.seconds}>
                {d.label}
              </option>
            ))}
          </select>
          <button type="submit" class="primary">
            Create viewer token
          </button>
          {minted && (
            <>
              <label for="share-token">Viewer token (until {new Date(minted.expiresAt).toLocaleString()})</label>
              <input id="share-token" readOnly value={minted.token} onFocus={(e) => (e.target as HTMLInputElement).select()} />
            </>
          )}
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
        </form>
      )}
    </div>
  );
}
