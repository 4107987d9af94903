/**
 * `serve` and the page: on by default on loopback, off on other addresses, --ui / --no-ui, and the
 * line that says where it is (with a token: how to open it, never the token itself).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

/** Starts `serve --port 0 …`; its URL on 127.0.0.1 and what it printed once listening. */
function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ base: string; out: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { env: { ...process.env, ...env } });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/[\d.]+:(\d+).*\n(playground: .*\n)?/.exec(out);
      // The page line follows in the same write when there is one; wait a moment for it.
      if (m) setTimeout(() => resolve({ base: `http://127.0.0.1:${m[1]}`, out }), 200);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
}

describe('serve --ui', () => {
  it('on by default on loopback: says where, and / is the page', async () => {
    const { base, out } = await serve([]);
    expect(out).toContain(`playground: ${base}/\n`);
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await res.text()).toContain('<script type="module" src="/ui/app.mjs">');
    expect((await fetch(`${base}/ui/app.mjs`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  });

  it('--no-ui: no line, / is 404; another address: off unless --ui', async () => {
    for (const [args, on] of [
      [['--no-ui'], false],
      [['--host', '0.0.0.0', '--insecure'], false],
      [['--host', '0.0.0.0', '--insecure', '--ui'], true],
    ] as Array<[string[], boolean]>) {
      const { base, out } = await serve(args);
      expect(out.includes('playground:'), args.join(' ')).toBe(on);
      expect((await fetch(`${base}/`)).status, args.join(' ')).toBe(on ? 200 : 404);
    }
  });

  it('with a token: how to open the page, never the token', async () => {
    const token = `secret-${Math.random().toString(36).slice(2)}`;
    const { base, out } = await serve([], { DS_TOKEN: token });
    expect(out).toContain(`playground: ${base}/?token=<your token>`);
    expect(out).not.toContain(token);
    expect((await fetch(`${base}/`)).status).toBe(401);
  });
});
