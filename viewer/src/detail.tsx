import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, request } from './api';
import { formatDateTime, formatValue } from './format';
import { detailQuery, type EntryDetail, type FieldChange } from './queries';

/** What the server stores instead of a redacted value. */
const REDACTED = '[REDACTED]';

interface DetailProps {
  token: string;
  id: string;
  /** Optional fields this server has (sequence, hash, previousHash). */
  extra: readonly string[];
  onClose(): void;
  onTransaction(transactionId: string): void;
  onAuthError(error: ApiError): void;
}

function Value({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="none">—</span>;
  return <code>{formatValue(value)}</code>;
}

function ChangeRow({ change }: { change: FieldChange }) {
  const redacted = change.from === REDACTED || change.to === REDACTED;
  const kind = redacted ? 'changed' : change.kind.toLowerCase();
  return (
    <tr class={`change ${kind}`}>
      <th scope="row">{change.field === '$' ? '(whole value)' : change.field}</th>
      <td>
        <span class="badge">{redacted ? 'changed' : kind}</span>
      </td>
      {redacted ? (
        <td colSpan={2} class="redacted">
          value redacted
        </td>
      ) : (
        <>
          <td class="before">{change.kind === 'ADDED' ? <span class="none">—</span> : <Value value={change.from} />}</td>
          <td class="after">{change.kind === 'REMOVED' ? <span class="none">—</span> : <Value value={change.to} />}</td>
        </>
      )}
    </tr>
  );
}

/** One entry in a modal dialog: who, from where, the transaction it belongs to, and the diff of previousData → data. */
export function Detail({ token, id, extra, onClose, onTransaction, onAuthError }: DetailProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [entry, setEntry] = useState<EntryDetail | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
  }, []);

  useEffect(() => {
    const abort = new AbortController();
    setEntry(null);
    setError(null);
    request<{ auditLog: EntryDetail }>(token, detailQuery(extra), { id }, abort.signal)
      .then((data) => setEntry(data.auditLog))
      .catch((failure: unknown) => {
        if (abort.signal.aborted) return;
        if (failure instanceof ApiError && failure.code === 'UNAUTHENTICATED') return onAuthError(failure);
        setError((failure as Error).message);
      });
    return () => abort.abort();
  }, [token, id]);

  const title = entry ? entry.name ?? `${entry.action} ${entry.resource}${entry.resourceId ? ` #${entry.resourceId}` : ''}` : 'Entry';

  return (
    <dialog
      ref={dialog}
      class="detail"
      aria-labelledby="detail-title"
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
    >
      <div class="detail-head">
        <h2 id="detail-title">{title}</h2>
        <button type="button" class="close" onClick={onClose} aria-label="Close">
          ×
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {!entry && !error && <p class="hint">Loading…</p>}
      {entry && (
        <>
          <dl class="facts">
            <dt>When</dt>
            <dd>
              <time dateTime={entry.createdAt}>{formatDateTime(entry.createdAt)}</time> <span class="hint">({entry.createdAt})</span>
            </dd>
            <dt>Action</dt>
            <dd>
              {entry.action} · {entry.resource}
              {entry.resourceId ? ` #${entry.resourceId}` : ''}
            </dd>
            <dt>Author</dt>
            <dd>{entry.author ? `${entry.author.name ?? entry.author.id} (${entry.author.type ?? 'unknown'}, id ${entry.author.id})` : 'system'}</dd>
            {entry.recordedBy && (
              <>
                <dt>Recorded by</dt>
                <dd>{entry.recordedBy}</dd>
              </>
            )}
            <dt>IP address</dt>
            <dd>{entry.ip ?? '—'}</dd>
            <dt>User agent</dt>
            <dd class="wrap">{entry.userAgent ?? '—'}</dd>
            <dt>Transaction</dt>
            <dd>
              {entry.transactionId ? (
                <button type="button" class="link" onClick={() => onTransaction(entry.transactionId!)}>
                  All entries of transaction {entry.transactionId}
                </button>
              ) : (
                '—'
              )}
            </dd>
            {entry.sequence != null && (
              <>
                <dt>Sequence</dt>
                <dd>{String(entry.sequence)}</dd>
              </>
            )}
            {entry.hash && (
              <>
                <dt>Hash</dt>
                <dd class="wrap">
                  <code>{entry.hash}</code>
                </dd>
              </>
            )}
            {entry.previousHash && (
              <>
                <dt>Previous hash</dt>
                <dd class="wrap">
                  <code>{entry.previousHash}</code>
                </dd>
              </>
            )}
          </dl>
          <h3>Changes</h3>
          {entry.changes.length === 0 ? (
            <p class="hint">No field changed.</p>
          ) : (
            <div class="scroll">
              <table class="diff">
                <thead>
                  <tr>
                    <th scope="col">Field</th>
                    <th scope="col">Change</th>
                    <th scope="col">Before</th>
                    <th scope="col">After</th>
                  </tr>
                </thead>
                <tbody>
                  {entry.changes.map((change) => (
                    <ChangeRow key={change.field} change={change} />
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {entry.meta != null && (
            <details>
              <summary>Meta</summary>
              <pre>{JSON.stringify(entry.meta, null, 2)}</pre>
            </details>
          )}
          <details>
            <summary>Raw data</summary>
            <pre>{JSON.stringify({ previousData: entry.previousData, data: entry.data }, null, 2)}</pre>
          </details>
        </>
      )}
    </dialog>
  );
}
