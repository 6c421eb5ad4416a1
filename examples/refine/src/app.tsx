import { Refine, useCreate, useKeys, useList, useLog, useLogList, useOne, useUpdate, type BaseKey } from '@refinedev/core';
import { useIsMutating } from '@tanstack/react-query';
import { createAuditLogProvider, type RefineLog } from 'auditql/refine';
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { memoryDataProvider } from './data-provider';

/** Credentials stay in this tab (sessionStorage) and travel in a header, never in a URL. */
const TOKEN_KEY = 'auditql.credentials';

export function App() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY));
  const dataProvider = useMemo(memoryDataProvider, []);
  // Same origin: the dev server (and `vite preview`) proxy /graphql to the audit server.
  const auditLogProvider = useMemo(() => createAuditLogProvider({ url: '/graphql', getToken: () => sessionStorage.getItem(TOKEN_KEY) }), []);

  if (!token) {
    return (
      <SignIn
        onToken={(value) => {
          sessionStorage.setItem(TOKEN_KEY, value);
          setToken(value);
        }}
      />
    );
  }
  return (
    <Refine
      dataProvider={dataProvider}
      auditLogProvider={auditLogProvider}
      resources={[{ name: 'posts', meta: { audit: ['create', 'update', 'delete'] } }]}
      options={{ disableTelemetry: true, reactQuery: { clientConfig: { defaultOptions: { queries: { retry: false } } } } }}
    >
      <Posts />
    </Refine>
  );
}

function SignIn({ onToken }: { onToken(token: string): void }) {
  const [value, setValue] = useState('');
  return (
    <form
      onSubmit={(event) => {
        event.preventDefault();
        if (value.trim()) onToken(value.trim());
      }}
    >
      <h1>Refine + auditql</h1>
      <label htmlFor="token">auditql API key</label> <input id="token" type="password" value={value} onChange={(e) => setValue(e.target.value)} />{' '}
      <button type="submit">Continue</button>
    </form>
  );
}

function Posts() {
  const [title, setTitle] = useState('');
  const [selected, setSelected] = useState<BaseKey | null>(null);
  const { mutate: create } = useCreate();
  const { result } = useList({ resource: 'posts' });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    create({ resource: 'posts', values: { title } }, { onSuccess: ({ data }) => setSelected(data.id ?? null) });
    setTitle('');
  };

  return (
    <main>
      <h1>Posts</h1>
      <form onSubmit={submit}>
        <label htmlFor="title">Title</label> <input id="title" value={title} onChange={(e) => setTitle(e.target.value)} /> <button type="submit">Create post</button>
      </form>
      <ul aria-label="Posts">
        {result.data.map((post) => (
          <li key={post.id}>
            <button type="button" onClick={() => setSelected(post.id ?? null)}>
              {String(post.title)}
            </button>
          </li>
        ))}
      </ul>
      {selected !== null && <PostEditor key={String(selected)} id={selected} />}
    </main>
  );
}

function PostEditor({ id }: { id: BaseKey }) {
  const { result: post } = useOne({ resource: 'posts', id });
  const { mutate: update } = useUpdate();
  const [title, setTitle] = useState('');
  if (!post) return null;
  return (
    <section aria-label="Selected post">
      <h2>{String(post.title)}</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          update({ resource: 'posts', id, values: { title } });
          setTitle('');
        }}
      >
        <label htmlFor="new-title">New title</label> <input id="new-title" value={title} onChange={(e) => setTitle(e.target.value)} /> <button type="submit">Save</button>
      </form>
      <History id={id} />
    </section>
  );
}

/** The post's audit history from auditql, through Refine's `useLogList`; entries are renamed with `useLog().rename`. */
function History({ id }: { id: BaseKey }) {
  const { data, refetch } = useLogList<RefineLog[]>({ resource: 'posts', meta: { id } });
  const { rename } = useLog();
  const [name, setName] = useState('');
  // Refine writes the entry after its mutation succeeds and does not refresh this list itself: refresh
  // when the audit-log writes settle.
  const { keys } = useKeys();
  const logging = useIsMutating({ mutationKey: keys().audit().action('log').get() });
  useEffect(() => {
    if (logging === 0) void refetch();
  }, [logging]);

  const latest = data?.[0];
  return (
    <section aria-label="History">
      <h3>History</h3>
      <ol>
        {(data ?? []).map((log) => (
          <li key={log.id} data-action={log.action}>
            <strong>{log.action}</strong> by {log.author?.name ?? log.author?.id ?? 'system'}
            {log.name ? ` “${log.name}”` : ''} — {changesOf(log)}
          </li>
        ))}
      </ol>
      {latest && (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            rename.mutate({ id: latest.id, name });
            setName('');
          }}
        >
          <label htmlFor="entry-name">Name the latest entry</label> <input id="entry-name" value={name} onChange={(e) => setName(e.target.value)} />{' '}
          <button type="submit">Rename</button>
        </form>
      )}
    </section>
  );
}

function changesOf(log: RefineLog): string {
  const before = (log.previousData ?? {}) as Record<string, unknown>;
  const after = (log.data ?? {}) as Record<string, unknown>;
  return Object.keys(after)
    .filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]))
    .map((key) => (key in before ? `${key}: ${String(before[key])} → ${String(after[key])}` : `${key}: ${String(after[key])}`))
    .join(', ');
}
