/**
 * examples/http_client.py (standard library only) runs the docs' generate and stream calls
 * against a real serve on 127.0.0.1, with a token.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../src/engine/engine';
import { createServer, type DiffusionServer } from '../src/server/server';

const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(__dirname, '..', 'examples', 'http_client.py');
let server: DiffusionServer, base: string;

beforeAll(async () => {
  server = createServer(createEngine(), { token: 'py-token' });
  base = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
});
afterAll(async () => {
  await server?.close(0);
});

const run = (token: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    // Asynchronously: the server answers from this process.
    const child = spawn(PYTHON, [CLIENT, base], { env: { ...process.env, DS_TOKEN: token } });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });

describe.skipIf(!fs.existsSync(PYTHON))('examples/http_client.py', () => {
  it('runs generate and the SSE stream, printing shapes and rewards', async () => {
    const r = await run('py-token');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^generate: shape \[2, 2\], rewards \[-?[\d.]+, -?[\d.]+\], complete True/m);
    expect(r.stdout).toMatch(/^stream: \d+ progress events$/m);
    expect(r.stdout).toMatch(/^stream: shape \[2, 2\], rewards \[/m);
  }, 120_000);

  it("prints the server's error and exits 1 on a refusal (here: a wrong token)", async () => {
    const r = await run('wrong');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/HTTP 401 UNAUTHORIZED/);
    expect(spawnSync(PYTHON, ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', CLIENT]).status).toBe(0);
  }, 60_000);
});
