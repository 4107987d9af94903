/** A secret or settings file named by a flag (never the value in argv), read as text. */
import fs from 'node:fs';
import { DiffusionSearchError } from '../errors';

/** The file's text; ARGUMENT naming the flag, the file, the cause and `fix` when it cannot be read. */
export function readFlagFile(flag: string, file: string, fix: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new DiffusionSearchError(`cannot read ${flag} '${file}' (${why}): ${fix}`, 'ARGUMENT', { cause: e });
  }
}
