/** A class-conditional request's class: a name from the model's card, or an index. */
import { DiffusionSearchError } from '../errors';
import { didYouMean } from './suggest';

export function resolveClass(cls: string | number | undefined, classes: string[] | undefined): number {
  if (cls === undefined) return 0;
  const names = classes ?? [];
  const asNum = typeof cls === 'number' ? cls : /^\d+$/.test(cls) ? Number(cls) : NaN;
  if (Number.isInteger(asNum) && asNum >= 0 && asNum < Math.max(1, names.length)) return asNum;
  const i = names.findIndex((c) => c.toLowerCase() === String(cls).toLowerCase());
  if (i >= 0) return i;
  const hint = typeof cls === 'string' ? didYouMean(cls, names) : '';
  throw new DiffusionSearchError(
    `unknown class '${cls}'${hint}: use an index below ` +
      `${Math.max(1, names.length)}${names.length ? ` or one of ${names.map((c) => `'${c}'`).join(', ')}` : ''}`,
    'ARGUMENT',
  );
}
