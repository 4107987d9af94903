import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');

describe('the native loader', () => {
  it('a bad DIFFUSION_SEARCH_NATIVE path is NATIVE_LOAD with the fix', () => {
    const script = `
      const { native } = require(${JSON.stringify(path.join(root, 'lib', 'native.js'))});
      try {
        native();
        console.log('loaded');
      } catch (e) {
        console.log(JSON.stringify({ code: e.code, message: e.message }));
      }`;
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
    const e = explainLoadFailure(
      new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory'),
      'x.node',
    );
    expect(e.code).toBe('NATIVE_LOAD');
    expect(e.message).toMatch(/libtorch_cpu\.so/);
    expect(e.message).toMatch(/apt-get install -y libtorch-dev/);
  });

  it('DIFFUSION_SEARCH_NATIVE pointing at the real build loads it', () => {
    const r = spawnSync(
      process.execPath,
      ['-e', `require(${JSON.stringify(path.join(root, 'lib', 'native.js'))}).native(); console.log('ok')`],
      {
        encoding: 'utf8',
        env: { ...process.env, DIFFUSION_SEARCH_NATIVE: path.join(root, 'build', 'Release', 'ds_native.node') },
      },
    );
    expect(r.stdout.trim()).toBe('ok');
  });
});

describe('prebuilds', () => {
  it('npm run prebuild tags the binary with what it needs, in a name node-gyp-build also accepts', () => {
    const fs = require('node:fs') as typeof import('node:fs');
    const os = require('node:os') as typeof import('node:os');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-prebuild-'));
    execFileSync(process.execPath, [
      path.join(root, 'scripts', 'install', 'prebuild.js'),
      '--binary',
      path.join(root, 'build', 'Release', 'ds_native.node'),
      '--dest',
      tmp,
    ]);
    const { listPrebuilds } = require(path.join(root, 'lib', 'prebuilds.js'));
    const [p] = listPrebuilds(path.join(tmp, 'prebuilds'), 'test');
    const info = JSON.parse(
      execFileSync(process.execPath, [path.join(root, 'lib', 'cli', 'index.js'), 'info', '--json'], {
        encoding: 'utf8',
      }),
    );
    // This machine's build: Debian's libtorch (versioned sonames), C++11 ABI, no CUDA kernels linked.
    expect(p.torch).toBe(info.torch.version.split('.').slice(0, 2).join('.'));
    expect(p.cxx11abi).toBe(info.torch.cxx11abi);
    expect(p.device).toBe(info.cuda.kernelsLinked ? expect.stringMatching(/^cuda\d+$/) : 'cpu');
    expect(p.napi).toBe(8);
    fs.writeFileSync(path.join(tmp, 'package.json'), '{"name":"x","version":"0.0.0"}');
    const found = execFileSync(
      process.execPath,
      ['-e', `console.log(require(${JSON.stringify(require.resolve('node-gyp-build'))}).path(${JSON.stringify(tmp)}))`],
      { encoding: 'utf8' },
    );
    expect(found.trim()).toBe(p.file);
  });
});

describe('info', () => {
  it('says which binary loaded and why CUDA is off', () => {
    const info = JSON.parse(
      execFileSync(process.execPath, [path.join(root, 'lib', 'cli', 'index.js'), 'info', '--json'], {
        encoding: 'utf8',
      }),
    );
    expect(info.native.kind).toBe('build');
    expect(info.native.file).toBe(path.join(root, 'build', 'Release', 'ds_native.node'));
    expect(['cmake-js', 'node-gyp']).toContain(info.native.build.tool);
    if (!info.cuda.available) expect(info.cuda.off).toMatch(/\w/);
    else expect(info.cuda.off).toBeNull();
  });
});
