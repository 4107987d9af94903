/**
 * The serve CLI over 127.0.0.1: start-up problems as one line and exit 2, a
 * token from --token-file or $DS_TOKEN and a public --host refused without one, and
 * remote verifiers from the CLI: allowed origins, timeout, retries and headers from a file.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
const ENV = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', DS_TOKEN: '', DS_VERIFIER_HEADERS: '' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-serve-cli-'));
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

function fails(args: string[], env: NodeJS.ProcessEnv = ENV) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr };
}

/** Starts `serve --port 0 ...`; resolves with its URL. */
function serve(args: string[], env: NodeJS.ProcessEnv = ENV): Promise<string> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], { env });
  children.push(child);
  let out = '',
    err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url + '/v1/generate', {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });

describe('start-up problems: one line naming the fix, exit 2', () => {
  it('a missing models directory, a port in use, an address not of this machine, a bad token file', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = String((busy.address() as net.AddressInfo).port);
    fs.writeFileSync(path.join(tmp, 'empty-token'), '\n');
    const cases: Array<[string[], RegExp]> = [
      [
        ['--models-dir', path.join(tmp, 'my-models')],
        /--models-dir '.*my-models' does not exist: create it \(mkdir -p/,
      ],
      [['--models-dir', path.join(tmp, 'empty-token')], /is not a directory/],
      [['--port', port], new RegExp(`port ${port} on 127.0.0.1 is in use: .*another --port`)],
      [['--host', '192.0.2.1', '--insecure'], /--host 192.0.2.1 is not an address of this machine/],
      [['--token-file', path.join(tmp, 'missing')], /cannot read --token-file .*ENOENT/],
      [['--token-file', path.join(tmp, 'empty-token')], /--token-file .* is empty/],
      [['--allow-remote-verifiers'], /needs the origins .* or '\*'/],
    ];
    for (const [args, msg] of cases) {
      const r = fails(['serve', '--port', '0', ...args]);
      expect(r.status, args.join(' ') + r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/internal error/);
    }
    busy.close();
  }, 120_000);
});

describe('tokens from the CLI', () => {
  it('a public --host without a token is refused unless --insecure', () => {
    const r = fails(['serve', '--port', '0', '--host', '0.0.0.0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /no token is set: give one with --token-file <file> \(or \$DS_TOKEN\), or pass --insecure/,
    );
  });

  it('$DS_TOKEN and --token-file: 401 without the token, 200 with it', async () => {
    const file = path.join(tmp, 'token');
    fs.writeFileSync(file, 'file-token\n');
    for (const [args, env, token] of [
      [['--token-file', file], ENV, 'file-token'],
      [['--host', '0.0.0.0'], { ...ENV, DS_TOKEN: 'env-token' }, 'env-token'],
    ] as const) {
      const url = (await serve([...args], env)).replace('0.0.0.0', '127.0.0.1');
      const body = { model: 'gmm2d', algorithm: 'best-of-n', budget: 20, steps: 5 };
      const no = await post(url, body);
      expect(no.status).toBe(401);
      expect(no.headers.get('www-authenticate')).toBe('Bearer realm="diffusion-search"');
      expect((await post(url, body, { authorization: `Bearer ${token}` })).status).toBe(200);
      expect((await fetch(url + '/healthz')).status).toBe(200);
    }
  }, 60_000);
});

describe('remote verifiers from the CLI', () => {
  it('origins allowed by list; timeout, retries and headers from a file reach the verifier', async () => {
    const seen: Array<string | undefined> = [];
    const grader = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      if (req.url === '/hang') return; // never answers
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        const { ids } = JSON.parse(b) as { ids: number[] };
        res.end(JSON.stringify({ ids, scores: ids.map(() => 0.5) }));
      });
    });
    await new Promise<void>((r) => grader.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(grader.address() as net.AddressInfo).port}`;
    const headers = path.join(tmp, 'headers');
    fs.writeFileSync(headers, 'Authorization: Bearer grader-key\n');
    const url = await serve([
      '--allow-remote-verifiers',
      `${origin},https://other.example`,
      '--verifier-timeout',
      '0.3',
      '--verifier-retries',
      '1',
      '--verifier-backoff',
      '0.05',
      '--verifier-headers-file',
      headers,
    ]);
    const body = { model: 'gmm2d', algorithm: 'best-of-n', budget: 20, steps: 5 };
    const ok = await post(url, { ...body, verifier: [`${origin}/score`] });
    expect(ok.status).toBe(200);
    expect(seen).toContain('Bearer grader-key');
    const t0 = performance.now();
    const hung = await post(url, { ...body, verifier: [`${origin}/hang`] });
    expect(hung.status).toBe(502);
    expect((await hung.json()).error.message).toMatch(/failed 2 times: no answer within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(5000);
    const other = await post(url, { ...body, verifier: ['http://127.0.0.1:1/score'] });
    expect(other.status).toBe(400);
    expect((await other.json()).error.message).toMatch(
      /origin http:\/\/127.0.0.1:1 is not allowed on this server \(allowed: /,
    );
    grader.close();
    grader.closeAllConnections();
  }, 60_000);
});
