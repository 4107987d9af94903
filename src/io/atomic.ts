/**
 * Output files written whole or not at all: the bytes go to a temporary file beside the target,
 * are flushed, then renamed over it. A full disk or a kill mid-write leaves the old file (or
 * none), never a truncated samples.npy or report.json; a write error is an ARGUMENT error naming
 * the file and the cause.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiffusionSearchError } from '../errors';

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    // writeSync may write less than asked (a filling disk): loop, so the next write reports ENOSPC.
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off, buf.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new DiffusionSearchError(`cannot write '${file}': ${(e as Error).message}`, 'ARGUMENT', { cause: e });
  }
}
