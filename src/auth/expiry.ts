/** Node fires timers longer than 2^31-1 ms (~24.8 days) at once; longer waits are re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `fn` at `at` (epoch ms); returns a function that cancels it. */
export function atTime(at: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const wait = at - Date.now();
    timer = wait > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, wait));
    timer.unref?.();
  };
  arm();
  return () => clearTimeout(timer);
}
