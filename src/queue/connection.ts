/** Redis connections of the queue: a `redis://` URL or ioredis-style options. */
import { DiffusionSearchError } from '../errors';

export interface RedisConnection {
  host?: string;
  port?: number;
  db?: number;
  username?: string;
  password?: string;
  tls?: Record<string, unknown>;
  [key: string]: unknown;
}

/** `redis://[user:pass@]host[:port][/db]` or `rediss://…` (TLS) → connection options. */
export function parseRedisUrl(url: string): RedisConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DiffusionSearchError(`--redis must be a URL like redis://127.0.0.1:6379, got '${url}'`, 'ARGUMENT');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new DiffusionSearchError(`--redis must start with redis:// or rediss://, got '${url}'`, 'ARGUMENT');
  const db = u.pathname.replace(/^\//, '');
  if (db && !/^\d+$/.test(db))
    throw new DiffusionSearchError(`--redis: the path must be a database number, got '${u.pathname}'`, 'ARGUMENT');
  const c: RedisConnection = { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379 };
  if (db) c.db = Number(db);
  if (u.username) c.username = decodeURIComponent(u.username);
  if (u.password) c.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') c.tls = {};
  return c;
}

export function toConnection(c: string | RedisConnection): RedisConnection {
  return typeof c === 'string' ? parseRedisUrl(c) : { ...c };
}
