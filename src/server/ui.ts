/**
 * The playground page at `/` (static files of the package's ui/ folder, no build step) and its
 * sign-in: with a token, `/?token=<token>` sets it as an HttpOnly, SameSite=Strict cookie and
 * redirects to `/`, so the page and its calls of the API carry it without the token in any URL
 * afterwards. The page talks only to the public API (GET /v1/schema, /v1/models, POST
 * /v1/generate/stream), like any other client.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { packageRoot } from '../native';
import { TOKEN_COOKIE, type BearerAuth } from './auth';
import { HttpError } from './errors';

export const UI_DIR = path.join(packageRoot, 'ui');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** True for the page's paths: `/` and `/ui/<file>`. */
export function isUiPath(p: string): boolean {
  return p === '/' || p === '/index.html' || p.startsWith('/ui/');
}

/** Answers a page path; `auth` is the server's (null: no token). */
export function serveUi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, auth: BearerAuth | null): void {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD')
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${url.pathname} does not take ${method}: use GET, HEAD`, {
      allow: 'GET, HEAD',
    });
  const given = url.searchParams.get('token');
  if (auth && given !== null && url.pathname === '/') {
    signIn(res, auth, given);
    return;
  }
  auth?.check(req, 'the page needs the token: open /?token=<token> once (the token of --token-file or $DS_TOKEN)');
  const file = fileOf(url.pathname);
  const body = fs.readFileSync(file);
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'content-security-policy':
      "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' blob:; style-src 'self'",
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/** The token of `?token=` as a cookie, then `/` without it in the address. */
function signIn(res: http.ServerResponse, auth: BearerAuth, token: string): void {
  auth.checkToken(token, "the ?token= given is not this server's: use the token of its --token-file or $DS_TOKEN");
  res.writeHead(303, {
    location: '/',
    'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
  });
  res.end();
}

/** The file of a page path: index.html for `/`, else a plain file name inside ui/ (nothing else is served). */
function fileOf(p: string): string {
  const name = p === '/' ? 'index.html' : p.replace(/^\/(ui\/)?/, '');
  if (!/^[a-z0-9][a-z0-9.-]*\.(html|mjs|css|svg|png)$/.test(name) || !fs.existsSync(path.join(UI_DIR, name)))
    throw new HttpError(404, 'NOT_FOUND', `no page file ${p}`);
  return path.join(UI_DIR, name);
}
