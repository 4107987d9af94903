/**
 * python3 with torch, for tests that compare the library with python3-torch running the same files.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.join(__dirname, '..');

/** The first python3 that imports torch, or undefined (tests that need it skip). */
export const python = ['/usr/bin/python3', 'python3'].find(
  (p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0,
);

/** Runs `code` (from the repo root, one thread) with a JSON file of `input` as argv[1]; its stdout as JSON. */
// biome-ignore lint/suspicious/noExplicitAny: the Python snippet's own JSON, read field by field
export function py(code: string, input: unknown): any {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-py-'));
  fs.writeFileSync(path.join(dir, 'in.json'), JSON.stringify(input));
  const r = spawnSync(python!, ['-c', code, path.join(dir, 'in.json')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}
