export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Opens a GraphQL subscription over SSE (yoga's "distinct connections" mode) and collects its events until
 * the server ends the stream. `received(n)` resolves once `n` `next` events have arrived.
 */
export async function openSse(url: string, key: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query, variables }),
  });
  if (!response.ok || !response.body) throw new Error(`SSE refused: ${response.status} ${await response.text()}`);
  const events: SseEvent[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const nexts = () => events.filter((e) => e.event === 'next').length;
  const done = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        if (!event) continue;
        events.push({ event, data: /^data: ?(.*)$/m.exec(block)?.[1] ?? '' });
        for (const waiter of [...waiters]) {
          if (nexts() >= waiter.count) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve();
          }
        }
      }
    }
    return events;
  })();
  return {
    events,
    done,
    received(count: number) {
      if (nexts() >= count) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ count, resolve }));
    },
  };
}
