/**
 * One interleaved round of a baseline `a` and a candidate `b`: `a` first in even rounds, `b` first in odd
 * ones, so that neither side always runs right after the other's writes (WAL growth, a checkpoint, a
 * neighbour's burst on the shared machine). Returns [a's result, b's result].
 */
export async function interleaved<T>(round: number, a: () => Promise<T>, b: () => Promise<T>): Promise<[T, T]> {
  if (round % 2 === 0) {
    const first = await a();
    return [first, await b()];
  }
  const first = await b();
  return [await a(), first];
}

/** Wall time and this process's CPU time (less disturbed by neighbours on a shared machine) of `work`, in ms. */
export async function timed(work: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await work();
  const used = process.cpuUsage(cpu);
  return { wall: Number(process.hrtime.bigint() - start) / 1e6, cpu: (used.user + used.system) / 1000 };
}
