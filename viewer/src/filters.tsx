import { useEffect, useState } from 'preact/hooks';
import { fromLocalInput, toLocalInput } from './format';
import { EMPTY_VIEW, RANGES, type RangeKey, type View } from './view';

type Draft = Pick<View, 'resource' | 'resourceId' | 'action' | 'authorId' | 'transactionId' | 'search' | 'range' | 'from' | 'to'>;

const draftOf = (view: View): Draft => ({
  resource: view.resource,
  resourceId: view.resourceId,
  action: view.action,
  authorId: view.authorId,
  transactionId: view.transactionId,
  search: view.search,
  range: view.range,
  from: view.from,
  to: view.to,
});

const TEXT_FIELDS: Array<{ key: keyof Draft; label: string; hint?: string }> = [
  { key: 'search', label: 'Search', hint: 'name, resource, record, action or author' },
  { key: 'resource', label: 'Resource', hint: 'comma-separated' },
  { key: 'resourceId', label: 'Record id' },
  { key: 'action', label: 'Action', hint: 'comma-separated' },
  { key: 'authorId', label: 'Author id', hint: 'comma-separated' },
  { key: 'transactionId', label: 'Transaction' },
];

export function Filters({ view, onApply }: { view: View; onApply(next: View): void }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(view));
  // The URL is the source of truth: back/forward and clicks elsewhere (a chart bar, a transaction link) update the form.
  useEffect(() => setDraft(draftOf(view)), [view]);
  const set = (key: keyof Draft) => (event: Event) => setDraft({ ...draft, [key]: (event.target as HTMLInputElement).value });

  return (
    <form
      class="filters card"
      role="search"
      aria-label="Filter entries"
      onSubmit={(event) => {
        event.preventDefault();
        onApply({ ...view, ...draft, entry: '' });
      }}
    >
      {TEXT_FIELDS.map(({ key, label, hint }) => (
        <div class="field" key={key}>
          <label for={`f-${key}`}>{label}</label>
          <input id={`f-${key}`} type="text" value={draft[key]} onInput={set(key)} placeholder={hint} autoComplete="off" />
        </div>
      ))}
      <div class="field">
        <label for="f-range">Time range</label>
        <select id="f-range" value={draft.range} onChange={(e) => setDraft({ ...draft, range: (e.target as HTMLSelectElement).value as RangeKey })}>
          {RANGES.map((r) => (
            <option key={r.key} value={r.key}>
              {r.label}
            </option>
          ))}
        </select>
      </div>
      {draft.range === 'custom' && (
        <>
          <div class="field">
            <label for="f-from">From</label>
            <input id="f-from" type="datetime-local" value={toLocalInput(draft.from)} onInput={(e) => setDraft({ ...draft, from: fromLocalInput((e.target as HTMLInputElement).value) })} />
          </div>
          <div class="field">
            <label for="f-to">To</label>
            <input id="f-to" type="datetime-local" value={toLocalInput(draft.to)} onInput={(e) => setDraft({ ...draft, to: fromLocalInput((e.target as HTMLInputElement).value) })} />
          </div>
        </>
      )}
      <div class="actions">
        <button type="submit" class="primary">
          Apply
        </button>
        <button type="button" onClick={() => onApply(EMPTY_VIEW)}>
          Reset
        </button>
      </div>
    </form>
  );
}
