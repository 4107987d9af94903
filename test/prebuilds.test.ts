/**
 * The loader's choice between prebuilt binaries (src/prebuilds.ts, selectPrebuild in src/native.ts):
 * which binary fits which libtorch, CUDA first when it can run, never another device's binary when
 * the asked one does not fit, and one NATIVE_LOAD error that lists what was found and what to install.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(__dirname, '..');
const P = require(path.join(root, 'lib', 'prebuilds.js')) as typeof import('../src/prebuilds');
const N = require(path.join(root, 'lib', 'native.js')) as typeof import('../src/native');
type Install = import('../src/prebuilds').LibtorchInstall;
type Prebuild = import('../src/prebuilds').Prebuild;

const debian: Install = {
  from: 'the system libraries',
  libDir: '/usr/lib/x86_64-linux-gnu',
  realDir: '/usr/lib/x86_64-linux-gnu',
  version: '1.13.0',
  mm: '1.13',
  cxx11abi: 1,
  cuda: null,
  cudaMajor: null,
  style: 'system',
  includeDirs: null,
};
const pipCuda: Install = {
  from: 'the PyTorch of python3',
  libDir: '/venv/torch/lib',
  realDir: '/venv/torch/lib',
  version: '2.5.1+cu121',
  mm: '2.5',
  cxx11abi: 0,
  cuda: '12.1',
  cudaMajor: 12,
  style: 'pytorch',
  includeDirs: null,
};
const pipCpu: Install = {
  ...pipCuda,
  libDir: '/cpu/torch/lib',
  realDir: '/cpu/torch/lib',
  version: '2.5.1+cpu',
  cuda: null,
  cudaMajor: null,
};

function prebuild(name: string, from = 'diffusion-search-linux-x64-cpu'): Prebuild {
  return { ...P.parsePrebuildName(name)!, file: `/x/${name}`, from };
}
const cpu113 = prebuild('ds_native.napi.glibc.napi8.torch1_13.cxx11abi1.system.cpu.node');
const cuda25 = prebuild(
  'ds_native.napi.glibc.napi8.torch2_5.cxx11abi0.pytorch.cuda12.node',
  'diffusion-search-linux-x64-cuda12',
);
const cpu25 = prebuild('ds_native.napi.glibc.napi8.torch2_5.cxx11abi0.pytorch.cpu.node');

describe('prebuild names', () => {
  it('carry N-API version, libtorch version and ABI, sonames and device, and round-trip', () => {
    const t = P.parsePrebuildName('ds_native.napi.glibc.napi8.torch2_5.cxx11abi0.pytorch.cuda12.node')!;
    expect(t).toEqual({ napi: 8, torch: '2.5', cxx11abi: 0, style: 'pytorch', device: 'cuda12', cudaMajor: 12 });
    expect(P.prebuildName(t)).toBe('ds_native.napi.glibc.napi8.torch2_5.cxx11abi0.pytorch.cuda12.node');
    expect(P.parsePrebuildName('ds_native.napi.glibc.node')).toBeNull(); // untagged (old) names are not ours
  });
});

describe('choosing a prebuild', () => {
  it("Debian's libtorch takes the cpu binary and says why CUDA is off", () => {
    const c = P.choosePrebuild([cpu113, cuda25], [debian])!;
    expect(c.prebuild).toBe(cpu113);
    expect(c.libtorch).toBe(debian);
    expect(c.cudaOff).toMatch(/CPU build/);
  });

  it('a CUDA PyTorch takes the CUDA binary even when a CPU pair is found first', () => {
    const c = P.choosePrebuild([cpu113, cpu25, cuda25], [debian, pipCuda])!;
    expect(c.prebuild).toBe(cuda25);
    expect(c.libtorch).toBe(pipCuda);
    expect(c.cudaOff).toBeNull();
  });

  it('never falls back to another device: a CUDA binary alone does not run on a CPU libtorch', () => {
    expect(P.choosePrebuild([cuda25], [debian, pipCpu])).toBeNull();
    expect(P.mismatch(cuda25, pipCpu)).toMatch(/needs a CUDA 12 libtorch, this one is CPU-only/);
    expect(P.mismatch(cuda25, { ...pipCuda, cuda: '11.8', cudaMajor: 11 })).toMatch(
      /needs CUDA 12, this libtorch has CUDA 11.8/,
    );
  });

  it('DIFFUSION_SEARCH_VARIANT keeps only that device', () => {
    expect(P.choosePrebuild([cpu25, cuda25], [pipCuda], 'cpu')!.prebuild).toBe(cpu25);
    expect(P.choosePrebuild([cpu113], [debian], 'cuda12')).toBeNull();
  });

  it('version, ABI and sonames must all match', () => {
    expect(P.mismatch(cpu113, pipCpu)).toMatch(/needs libtorch 1.13, this is 2.5/);
    expect(P.mismatch(cpu25, { ...pipCpu, cxx11abi: 1 })).toMatch(/pre-C\+\+11 ABI/);
    expect(P.mismatch(cpu113, { ...debian, style: 'pytorch' })).toMatch(/system sonames/);
    expect(P.mismatch(cpu113, { ...debian, cxx11abi: null })).toBeNull(); // unknown ABI: let the load decide
  });

  it('a cpu binary on a CUDA libtorch names the CUDA package to install', () => {
    const c = P.choosePrebuild([cpu25], [pipCuda])!;
    expect(c.cudaOff).toMatch(/install diffusion-search-linux-x64-cuda12 for CUDA/);
  });
});

/** A package root with a variant package holding `names`, and a fake libtorch install. */
function fakeInstall(names: string[], torch: { version: string; abi: 0 | 1 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-variants-'));
  const pkgRoot = path.join(dir, 'node_modules', 'diffusion-search');
  fs.mkdirSync(pkgRoot, { recursive: true });
  fs.writeFileSync(
    path.join(pkgRoot, 'package.json'),
    JSON.stringify({
      name: 'diffusion-search',
      optionalDependencies: { 'diffusion-search-linux-x64-cpu': '0.1.0', 'diffusion-search-linux-x64-cuda12': '0.1.0' },
    }),
  );
  const variant = path.join(dir, 'node_modules', 'diffusion-search-linux-x64-cpu');
  fs.mkdirSync(path.join(variant, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
  fs.writeFileSync(path.join(variant, 'package.json'), '{"name":"diffusion-search-linux-x64-cpu","version":"0.1.0"}');
  for (const n of names)
    fs.writeFileSync(path.join(variant, 'prebuilds', `${process.platform}-${process.arch}`, n), '');
  // A PyTorch-style libtorch: plain sonames, version.h, libc10 naming std::__cxx11 when abi is 1.
  const lt = path.join(dir, 'libtorch');
  fs.mkdirSync(path.join(lt, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(lt, 'lib', 'libc10.so'), torch.abi ? '_ZNSt7__cxx1112basic_string' : '_ZNSs4_Rep');
  for (const l of ['libtorch_cpu.so', 'libtorch.so']) fs.writeFileSync(path.join(lt, 'lib', l), '');
  const inc = path.join(lt, 'include', 'torch', 'csrc', 'api', 'include', 'torch');
  fs.mkdirSync(inc, { recursive: true });
  fs.writeFileSync(path.join(inc, 'version.h'), `#define TORCH_VERSION "${torch.version}"\n`);
  fs.writeFileSync(path.join(inc, 'torch.h'), '');
  return { pkgRoot, libtorch: lt };
}

describe('selectPrebuild over installed variant packages', () => {
  const pytorchCpu = 'ds_native.napi.glibc.napi8.torch2_5.cxx11abi1.pytorch.cpu.node';

  it('finds the variant package through optionalDependencies and matches DIFFUSION_SEARCH_LIBTORCH', () => {
    const { pkgRoot, libtorch } = fakeInstall(
      [pytorchCpu, 'ds_native.napi.glibc.napi8.torch1_13.cxx11abi1.system.cpu.node'],
      { version: '2.5.1', abi: 1 },
    );
    expect(N.variantPackages(pkgRoot)).toEqual(['diffusion-search-linux-x64-cpu', 'diffusion-search-linux-x64-cuda12']);
    const { choice } = N.selectPrebuild({ DIFFUSION_SEARCH_LIBTORCH: libtorch }, pkgRoot);
    expect(path.basename(choice.prebuild.file)).toBe(pytorchCpu);
    expect(choice.prebuild.from).toBe('diffusion-search-linux-x64-cpu');
    expect(choice.libtorch.libDir).toBe(path.join(libtorch, 'lib'));
  });

  it('when nothing fits: one NATIVE_LOAD error with the binaries, the libtorch found and what to install', () => {
    const { pkgRoot, libtorch } = fakeInstall([pytorchCpu], { version: '2.4.0', abi: 0 });
    let err: (Error & { code?: string }) | undefined;
    try {
      N.selectPrebuild({ DIFFUSION_SEARCH_LIBTORCH: libtorch }, pkgRoot);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('NATIVE_LOAD');
    const m = err!.message;
    expect(m).toMatch(
      new RegExp(
        String.raw`Binaries installed:\n {2}- diffusion-search-linux-x64-cpu: ds_native.*torch2_5.*` +
          String.raw`\(libtorch 2.5, pytorch sonames, C\+\+11 ABI, cpu\)`,
      ),
    );
    expect(m).toMatch(/libtorch found:\n {2}- libtorch 2.4.0 \(CPU, pre-C\+\+11 ABI, pytorch sonames\)/);
    expect(m).toMatch(/cpu\/2.5: needs libtorch 2.5, this is 2.4/);
    expect(m).toMatch(/Install one of:\n {2}- PyTorch 2.5.x for python3 \(CPU\): pip install 'torch==2.5.\*'/);
    expect(m).toMatch(/npm rebuild diffusion-search/);
  });

  it('a requested variant that is not installed is an error, not another device', () => {
    const { pkgRoot, libtorch } = fakeInstall([pytorchCpu], { version: '2.5.1', abi: 1 });
    expect(() =>
      N.selectPrebuild({ DIFFUSION_SEARCH_LIBTORCH: libtorch, DIFFUSION_SEARCH_VARIANT: 'cuda12' }, pkgRoot),
    ).toThrow(/DIFFUSION_SEARCH_VARIANT=cuda12[\s\S]*not the requested variant/);
  });

  it('no variant package installed: says which are missing', () => {
    const { pkgRoot, libtorch } = fakeInstall([], { version: '2.5.1', abi: 1 });
    fs.rmSync(path.join(pkgRoot, '..', 'diffusion-search-linux-x64-cpu'), { recursive: true });
    expect(() => N.selectPrebuild({ DIFFUSION_SEARCH_LIBTORCH: libtorch }, pkgRoot)).toThrow(
      'no prebuilt binary for linux-x64 is installed (variant packages: ' +
        'diffusion-search-linux-x64-cpu not installed, diffusion-search-linux-x64-cuda12 not installed)',
    );
  });
});

const gxx = spawnSync('g++', ['--version']).status === 0;

describe.skipIf(!gxx)('preloading libtorch by path', () => {
  it("lets a binary's DT_NEEDED resolve without LD_LIBRARY_PATH", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-preload-'));
    const a = path.join(dir, 'a');
    fs.mkdirSync(a);
    fs.writeFileSync(path.join(dir, 'dep.c'), 'int ds_fake_dep(void) { return 7; }\n');
    fs.writeFileSync(
      path.join(dir, 'user.c'),
      'int ds_fake_dep(void); int ds_fake_user(void) { return ds_fake_dep(); }\n',
    );
    execFileSync('gcc', [
      '-shared',
      '-fPIC',
      '-Wl,-soname,libdsfakedep.so',
      '-o',
      path.join(a, 'libdsfakedep.so'),
      path.join(dir, 'dep.c'),
    ]);
    execFileSync('gcc', [
      '-shared',
      '-fPIC',
      '-o',
      path.join(dir, 'user.so'),
      path.join(dir, 'user.c'),
      `-L${a}`,
      '-ldsfakedep',
    ]);
    const script = (preload: boolean) => `
      const N = require(${JSON.stringify(path.join(root, 'lib', 'native.js'))});
      ${preload ? `N.preloadLibraries([${JSON.stringify(path.join(a, 'libdsfakedep.so'))}]);` : ''}
      try {
        process.dlopen({ exports: {} }, ${JSON.stringify(path.join(dir, 'user.so'))});
      } catch (e) {
        console.log(e.message);
      }`;
    const env = { ...process.env, LD_LIBRARY_PATH: '' };
    expect(execFileSync(process.execPath, ['-e', script(false)], { encoding: 'utf8', env })).toMatch(
      /libdsfakedep\.so: cannot open shared object file/,
    );
    // With the preload, dlopen gets past the dependency and only finds no Node module in user.so.
    expect(execFileSync(process.execPath, ['-e', script(true)], { encoding: 'utf8', env })).toMatch(
      /did not self-register/,
    );
  });
});
