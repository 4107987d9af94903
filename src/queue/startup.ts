/**
 * Start-up checks of the queue commands: each problem found before the worker (or a client) starts
 * is one DiffusionSearchError naming the fix, so the CLI prints one line and exits 2 — rather than
 * a worker retrying a dead Redis forever, or failing every job on a directory it cannot write.
 */
import fs from 'node:fs';
import Redis from 'ioredis';
import { DiffusionSearchError } from '../errors';
import { toConnection, type RedisConnection } from './connection';

/** The directory exists and this process may read it (and write it, for `write`), or ARGUMENT naming the flag. */
export function checkDir(flag: string, dir: string, o: { write?: boolean } = {}): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const fix = o.write ? `create it (mkdir -p '${dir}')` : 'create it';
    throw new DiffusionSearchError(
      `${flag} '${dir}' ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}: ` +
        `${fix} or give another directory`,
      'ARGUMENT',
    );
  }
  if (!st.isDirectory())
    throw new DiffusionSearchError(`${flag} '${dir}' is not a directory: give a directory`, 'ARGUMENT');
  const mode = fs.constants.R_OK | fs.constants.X_OK | (o.write ? fs.constants.W_OK : 0);
  try {
    fs.accessSync(dir, mode);
  } catch {
    const what = o.write ? 'read and write' : 'read';
    throw new DiffusionSearchError(
      `${flag} '${dir}' is not a directory this user (uid ${process.getuid?.() ?? '?'}) may ${what}: ` +
        'fix its permissions or give another',
      'ARGUMENT',
    );
  }
}

/**
 * One connection and one PING, no retries: resolves when Redis answers; otherwise ARGUMENT saying
 * why (nothing listening, no such host, no answer, a password wanted or refused) and the fix.
 */
export async function probeRedis(c: string | RedisConnection, timeoutMs = 5000): Promise<void> {
  const conn = toConnection(c);
  const where = `Redis at ${conn.host}:${conn.port}`;
  const r = new Redis({
    ...conn,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  } as never);
  // The socket's own error (ECONNREFUSED, NOAUTH …): connect() only says the connection closed.
  let cause: Error | undefined;
  r.on('error', (e: Error) => (cause ??= e));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })), timeoutMs);
  });
  try {
    await Promise.race([r.connect().then(() => r.ping()), late]);
  } catch (e) {
    const why = (cause ?? e) as NodeJS.ErrnoException;
    throw new DiffusionSearchError(redisProblem(where, why, timeoutMs), 'ARGUMENT', { cause: why });
  } finally {
    clearTimeout(timer);
    r.disconnect();
  }
}

function redisProblem(where: string, e: NodeJS.ErrnoException, timeoutMs: number): string {
  const msg = e.message ?? '';
  const fix = 'start redis-server there or point --redis at a running one (redis://host:port)';
  if (e.code === 'ECONNREFUSED') return `cannot reach ${where}: nothing listens there (ECONNREFUSED); ${fix}`;
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
    return `cannot reach ${where}: no such host (${e.code}); check the host name in --redis`;
  if (e.code === 'ETIMEDOUT' || /timeout|no answer/i.test(msg))
    return `cannot reach ${where}: no answer within ${timeoutMs / 1000} s; check the address and firewall, or ${fix}`;
  if (/NOAUTH/.test(msg))
    return `${where} wants a password: give it in the URL, redis://:PASSWORD@host:port (or user:PASSWORD@)`;
  if (/WRONGPASS|invalid (username|password)/i.test(msg))
    return `${where} refused the user or password in --redis (WRONGPASS): correct them`;
  return `cannot reach ${where}: ${msg || e.code}; ${fix}`;
}
