import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyThreadDefaults } from '../src/native';

// A fresh process loads the addon through lib/native.js; libgomp prints the spin count it chose
// at load time (OMP_DISPLAY_ENV=verbose): 0 when passive, 300000 when unset, 3e10 when active.
const nativeJs = path.join(__dirname, '..', 'lib', 'native.js');
function spinCount(env: Record<string, string | undefined>): string {
  const childEnv: Record<string, string> = { OMP_DISPLAY_ENV: 'verbose' };
  for (const [k, v] of Object.entries(process.env)) if (k !== 'OMP_WAIT_POLICY' && v !== undefined) childEnv[k] = v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(nativeJs)}).native()`], {
    env: childEnv,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status).toBe(0);
  const m = /GOMP_SPINCOUNT = '(\d+)'/.exec(r.stderr);
  expect(m, r.stderr).not.toBeNull();
  return m![1];
}

describe('OpenMP wait policy', () => {
  it('is passive unless the user set one', () => {
    const env: NodeJS.ProcessEnv = {};
    applyThreadDefaults(env);
    expect(env.OMP_WAIT_POLICY).toBe('PASSIVE');
  });

  it("keeps the user's own value", () => {
    const env: NodeJS.ProcessEnv = { OMP_WAIT_POLICY: 'ACTIVE' };
    applyThreadDefaults(env);
    expect(env.OMP_WAIT_POLICY).toBe('ACTIVE');
  });

  it('reaches libgomp: loading the addon without OMP_WAIT_POLICY gives it a passive spin count', () => {
    expect(spinCount({})).toBe('0');
  });

  it("reaches libgomp with the user's value kept", () => {
    expect(spinCount({ OMP_WAIT_POLICY: 'ACTIVE' })).toBe('30000000000');
  });
});
