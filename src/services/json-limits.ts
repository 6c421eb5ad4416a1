import type { Limits } from '../config.js';
import { badUserInput } from '../shared/errors.js';

/**
 * Checked before anything is stored (or, later, hashed): a JSON value's serialised size, nesting depth and
 * number of keys.
 * The depth walk is iterative so a hostile 20,000-level value cannot overflow the stack.
 */
export function assertJsonWithinLimits(value: unknown, field: string, limits: Pick<Limits, 'maxJsonBytes' | 'maxJsonDepth' | 'maxJsonKeys'>): void {
  if (value === null || value === undefined) return;
  const stack: Array<[unknown, number]> = [[value, 1]];
  let keys = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth > limits.maxJsonDepth) throw badUserInput(`${field} is nested deeper than ${limits.maxJsonDepth} levels`, field);
    const children = Object.values(current);
    keys += children.length;
    if (keys > limits.maxJsonKeys) throw badUserInput(`${field} has more than ${limits.maxJsonKeys} keys and items`, field);
    for (const child of children) stack.push([child, depth + 1]);
  }
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (bytes > limits.maxJsonBytes) throw badUserInput(`${field} is ${bytes} bytes; at most ${limits.maxJsonBytes} are accepted`, field);
}
