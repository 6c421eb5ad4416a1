import { useState } from 'preact/hooks';
import { authorization } from './api';
import type { GraphQLFilter } from './view';

const FORMATS = [
  { format: 'csv', label: 'Export CSV' },
  { format: 'ndjson', label: 'Export NDJSON' },
] as const;

/**
 * Downloads the current filter from the server's export endpoint. The credentials go in a header, so the
 * download is fetched by script and handed to the browser as a file, rather than opened as a link.
 */
export function ExportButtons({ token, filter }: { token: string; filter: GraphQLFilter }) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const download = async (format: string) => {
    setBusy(format);
    setError(null);
    try {
      const params = new URLSearchParams({ format, filter: JSON.stringify(filter) });
      const response = await fetch(`/export?${params}`, { headers: { authorization: authorization(token) } });
      if (!response.ok) throw new Error(`Export failed (${response.status})`);
      const name = /filename="?([^";]+)"?/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? `audit-log.${format}`;
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement('a');
      link.href = url;
      link.download = name;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (failure) {
      setError((failure as Error).message);
    } finally {
      setBusy(null);
    }
  };

  return (
    <div class="export" role="group" aria-label="Export the current filter">
      {FORMATS.map(({ format, label }) => (
        <button key={format} type="button" onClick={() => download(format)} disabled={busy !== null}>
          {busy === format ? 'Exporting…' : label}
        </button>
      ))}
      {error && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
