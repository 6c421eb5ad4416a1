import { useState } from 'preact/hooks';
import { ApiError, request } from './api';

const CHECK = 'query ViewerSignIn { auditLogs(first: 1) { edges { cursor } } }';

/** Credentials are pasted once; the tab keeps them in sessionStorage until it closes or the user signs out. */
export function SignIn({ onSignIn, message }: { onSignIn(token: string): void; message: string | null }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(message);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) return setError('Paste an API key or a token.');
    setBusy(true);
    setError(null);
    try {
      await request(value, CHECK);
      onSignIn(value);
    } catch (failure) {
      setError(failure instanceof ApiError && failure.code === 'UNAUTHENTICATED' ? 'These credentials are not valid.' : (failure as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin">
      <form onSubmit={submit} class="card" aria-labelledby="signin-title">
        <h1 id="signin-title">Audit log</h1>
        <p class="hint">Sign in with an API key (aql_…), a bearer token or a viewer token. It stays in this tab only.</p>
        <label for="token">API key or token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          aria-describedby={error ? 'signin-error' : undefined}
          aria-invalid={error ? true : undefined}
        />
        {error && (
          <p id="signin-error" class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
