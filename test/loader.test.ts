import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');

describe('the native loader', () => {
  it('a bad DIFFUSION_SEARCH_NATIVE path is NATIVE_LOAD with the fix', () => {
    const script = `
      const { native } = require(${JSON.stringify(path.join(root, 'lib', 'native.js'))});
      try { native(); console.log('loaded'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = execFileSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, DIFFUSION_SEARCH_NATIVE: '/nonexistent/ds_native.node' },
    });
    const e = JSON.parse(out);
    expect(e.code).toBe('NATIVE_LOAD');
    expect(e.message).toMatch(/npm run build:native/);
    expect(e.message).toMatch(/libtorch-dev/);
  });

  it('a missing libtorch at run time names libtorch and how to install it', () => {
    const { explainLoadFailure } = require(path.join(root, 'lib', 'native.js'));
    const e = explainLoadFailure(new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory'), 'x.node');
    expect(e.code).toBe('NATIVE_LOAD');
    expect(e.message).toMatch(/libtorch_cpu\.so/);
    expect(e.message).toMatch(/apt-get install -y libtorch-dev/);
  });

  it('DIFFUSION_SEARCH_NATIVE pointing at the real build loads it', () => {
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(root, 'lib', 'native.js'))}).native(); console.log('ok')`], {
      encoding: 'utf8',
      env: { ...process.env, DIFFUSION_SEARCH_NATIVE: path.join(root, 'build', 'Release', 'ds_native.node') },
    });
    expect(r.stdout.trim()).toBe('ok');
  });
});

describe('prebuilds', () => {
  it('make-prebuild names the binary so node-gyp-build finds it in prebuilds/', () => {
    const fs = require('node:fs') as typeof import('node:fs');
    const os = require('node:os') as typeof import('node:os');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-prebuild-'));
    fs.mkdirSync(path.join(tmp, 'scripts'));
    fs.mkdirSync(path.join(tmp, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(path.join(root, 'scripts', 'make-prebuild.js'), path.join(tmp, 'scripts', 'make-prebuild.js'));
    fs.copyFileSync(path.join(root, 'build', 'Release', 'ds_native.node'), path.join(tmp, 'build', 'Release', 'ds_native.node'));
    fs.writeFileSync(path.join(tmp, 'package.json'), '{"name":"x","version":"0.0.0"}');
    execFileSync(process.execPath, [path.join(tmp, 'scripts', 'make-prebuild.js')]);
    fs.rmSync(path.join(tmp, 'build'), { recursive: true });
    const out = execFileSync(
      process.execPath,
      ['-e', `const p = require(${JSON.stringify(require.resolve('node-gyp-build'))}).path(${JSON.stringify(tmp)}); console.log(p); require(p).info();`],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toMatch(/prebuilds\/linux-x64\/ds_native\.napi\.glibc\.node$/);
  });
});
