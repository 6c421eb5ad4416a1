import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, createLiveClient, firstError } from './api';
import { LIVE, type Entry } from './queries';
import type { GraphQLFilter } from './view';

export type LiveStatus = 'off' | 'paused' | 'connecting' | 'live' | 'reconnecting' | 'error';

interface LiveOptions {
  token: string;
  filter: GraphQLFilter;
  /** False while paused, while the first page loads, or when the range ends in the past. */
  enabled: boolean;
  paused: boolean;
  /** The position to resume after: the newest entry the page holds. Updated here as entries arrive. */
  after: { current: string | null };
  onEntry(entry: Entry): void;
  onAuthError(error: ApiError): void;
}

type GraphQLErrors = ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }>;

const isErrorList = (value: unknown): value is GraphQLErrors => Array.isArray(value) && value.every((e) => typeof e?.message === 'string');

/**
 * New entries as they are committed. Whenever the stream breaks (server restart, network, SLOW_CONSUMER)
 * it subscribes again with `after` = the newest entry received, and the server replays what was missed
 * before going live again: nothing is lost and nothing shown twice.
 */
export function useLive({ token, filter, enabled, paused, after, onEntry, onAuthError }: LiveOptions): { status: LiveStatus; error: string | null } {
  const [status, setStatus] = useState<LiveStatus>('off');
  const [error, setError] = useState<string | null>(null);
  const handlers = useRef({ onEntry, onAuthError });
  handlers.current = { onEntry, onAuthError };
  const filterKey = JSON.stringify(filter);

  useEffect(() => {
    if (!enabled) {
      setStatus(paused ? 'paused' : 'off');
      return;
    }
    let stopped = false;
    /** Set by an error that subscribing again would only repeat (bad filter, refused credentials). */
    let halted = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let unsubscribe: (() => void) | undefined;
    const client = createLiveClient(token, {
      connected: () => {
        attempt = 0;
        if (!stopped) setStatus('live');
      },
      closed: () => {},
    });
    const retry = (delay?: number) => {
      if (stopped || halted) return;
      unsubscribe = undefined;
      setStatus('reconnecting');
      const wait = delay ?? Math.min(5000, 250 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      timer = setTimeout(start, wait);
    };
    const fail = (failure: ApiError) => {
      if (failure.code === 'RATE_LIMITED') return retry(Number(failure.extensions.retryAfterMs) || undefined);
      halted = true;
      if (failure.code === 'UNAUTHENTICATED') return handlers.current.onAuthError(failure);
      setError(failure.message);
      setStatus('error');
    };
    const start = () => {
      if (stopped) return;
      setError(null);
      setStatus(attempt === 0 ? 'connecting' : 'reconnecting');
      unsubscribe = client.subscribe<{ auditLogAdded: Entry }>(
        { query: LIVE, variables: { filter, after: after.current ?? undefined } },
        {
          next: ({ data, errors }) => {
            if (data?.auditLogAdded) {
              after.current = data.auditLogAdded.cursor;
              handlers.current.onEntry(data.auditLogAdded);
            }
            // SLOW_CONSUMER ends the stream (complete follows), and we resume after the last entry.
            if (errors?.length) {
              const failure = firstError(errors);
              if (failure.code !== 'SLOW_CONSUMER') fail(failure);
            }
          },
          error: (reason: unknown) => {
            if (stopped || halted) return;
            if (isErrorList(reason)) return fail(firstError(reason));
            const code = (reason as { code?: unknown } | null)?.code;
            // 4401: the credentials expired; 4403: they were refused at connection_init.
            if (code === 4401 || code === 4403) return fail(new ApiError('Your credentials are no longer valid', 'UNAUTHENTICATED'));
            retry();
          },
          complete: () => {
            if (!halted) retry();
          },
        },
      );
    };
    start();
    return () => {
      stopped = true;
      clearTimeout(timer);
      unsubscribe?.();
      void client.dispose();
    };
  }, [token, filterKey, enabled, paused]);

  return { status, error };
}
