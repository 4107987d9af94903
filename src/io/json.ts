/** Limits on untrusted JSON (a --config file, a request body) before any code walks it recursively. */
import { DiffusionSearchError } from '../errors';

/** Deeper than this is refused: String()/Number() of a deeply nested array recurses and overflows the stack. */
export const MAX_JSON_DEPTH = 64;

/** Throws ARGUMENT when `value` nests arrays/objects deeper than `max` (checked without recursion). */
export function checkJsonDepth(value: unknown, what: string, max = MAX_JSON_DEPTH): void {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d >= max) throw new DiffusionSearchError(`${what} nests arrays or objects more than ${max} deep`, 'ARGUMENT');
    for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, d + 1]);
  }
}
