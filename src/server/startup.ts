/**
 * Start-up problems of a service (serve, worker) as one line naming the fix (ARGUMENT: exit 2),
 * not an internal error with a stack: a models directory that is missing or unreadable, a port
 * in use, an address not of this machine, a public address without a token.
 */
import fs from 'node:fs';
import { DiffusionSearchError } from '../errors';

/** Throws unless `dir` is a readable directory. */
export function checkModelsDir(dir: string, flag = '--models-dir'): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new DiffusionSearchError(
        `${flag} '${dir}' does not exist: create it (mkdir -p ${dir}) or name a directory of .pt files`,
        'ARGUMENT',
      );
    throw new DiffusionSearchError(
      `${flag} '${dir}' cannot be read (${code}): name a directory this user can read`,
      'ARGUMENT',
    );
  }
  if (!st.isDirectory())
    throw new DiffusionSearchError(`${flag} '${dir}' is not a directory: name a directory of .pt files`, 'ARGUMENT');
  try {
    fs.readdirSync(dir);
  } catch (e) {
    throw new DiffusionSearchError(
      `${flag} '${dir}' cannot be read (${(e as NodeJS.ErrnoException).code}): give this user read access to it`,
      'ARGUMENT',
    );
  }
}

/** Loopback addresses (and 'localhost'): only this machine can reach them. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Refuses a public address without a token unless `insecure`. */
export function checkExposure(host: string, hasToken: boolean, insecure: boolean): void {
  if (hasToken || insecure || isLoopback(host)) return;
  throw new DiffusionSearchError(
    `--host ${host} is reachable from other machines and no token is set: ` +
      'give one with --token-file <file> (or $DS_TOKEN), ' +
      'or pass --insecure to serve without authentication',
    'ARGUMENT',
  );
}

/** A listen() failure as one line naming the fix; other errors unchanged. */
export function listenError(e: unknown, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const at = `${host}:${port}`;
  if (code === 'EADDRINUSE')
    return new DiffusionSearchError(
      `port ${port} on ${host} is in use: stop what holds it or choose another --port (0: any free one)`,
      'ARGUMENT',
      { cause: e },
    );
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new DiffusionSearchError(
      `cannot listen on ${at}: --host ${host} is not an address of this machine ` +
        '(use 127.0.0.1, 0.0.0.0 or one of its addresses)',
      'ARGUMENT',
      { cause: e },
    );
  if (code === 'EACCES')
    return new DiffusionSearchError(
      `cannot listen on ${at}: ports below 1024 need privileges; choose a --port above 1023`,
      'ARGUMENT',
      { cause: e },
    );
  return e;
}
