#!/usr/bin/env node
// `npm run prebuild`: turns the built addon into a tagged prebuild (src/prebuilds.ts has the name
// format) in prebuilds/<platform>-<arch>/ and in its variant package npm/<platform>-<arch>-<device>/,
// ready for `npm pack`. The tags come from the binary itself: N-API version and libtorch version
// and C++ ABI from its info(), system/pytorch sonames and the CUDA major from the libraries it needs.
//
//   node scripts/install/prebuild.js                 build/Release/ds_native.node (built first if missing)
//   node scripts/install/prebuild.js --binary F      another binary (e.g. a node-gyp build)
//   node scripts/install/prebuild.js --dest DIR      write DIR/prebuilds/<platform>-<arch>/<name> only
//                                            (the GPU machine: DIR=$OUT, see scripts/dev/gpu-check.sh)
//   node scripts/install/prebuild.js --import DIR    take the tagged binaries under DIR (what --dest wrote,
//                                            brought back) into prebuilds/ and the variant packages
// npm runs this before `npm run build` too (the pre-hook of "build"): it then tags the build that
// is already there, or builds one.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');
const platformArch = `${process.platform}-${process.arch}`;
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const NAME =
  /^ds_native\.napi\.(?:glibc\.|musl\.)?napi\d+\.torch\d+_\d+\.cxx11abi[01]\.(system|pytorch)\.(cpu|cuda\d+)\.node$/;

function libc() {
  if (process.platform !== 'linux') return null;
  return process.report?.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** Tags read from the binary: its info() (loaded in a child process) and the sonames it names. */
function tagsOf(binary) {
  const script = `const b = require(${JSON.stringify(binary)}); process.stdout.write(JSON.stringify(b.info()));`;
  const r = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
  });
  if (r.status !== 0) {
    console.error(`prebuild: cannot load ${binary} to read its tags:\n${r.stderr}`);
    process.exit(1);
  }
  const info = JSON.parse(r.stdout);
  const bytes = fs.readFileSync(binary).toString('latin1');
  const style = /libtorch_cpu\.so\.\d+\.\d+/.test(bytes) ? 'system' : 'pytorch';
  const cudart = /libcudart\.so\.(\d+)/.exec(bytes);
  let device = 'cpu';
  if (info.cuda.kernelsLinked) {
    if (!cudart) {
      console.error(
        'prebuild: the binary links CUDA kernels but names no libcudart.so.<major>; cannot tag its CUDA version',
      );
      process.exit(1);
    }
    device = `cuda${cudart[1]}`;
  }
  const mm = /^(\d+)\.(\d+)/.exec(info.torch.version);
  return {
    napi: info.build?.napi ?? 8,
    torch: `${mm[1]}_${mm[2]}`,
    cxx11abi: info.torch.cxx11abi ?? 1,
    style,
    device,
    info,
  };
}

function nameOf(t) {
  return [
    'ds_native',
    'napi',
    libc(),
    `napi${t.napi}`,
    `torch${t.torch}`,
    `cxx11abi${t.cxx11abi}`,
    t.style,
    t.device,
    'node',
  ]
    .filter(Boolean)
    .join('.');
}

/** The variant package's folder, created from the cpu one's package.json when it is new. */
function variantDir(device) {
  const dir = path.join(root, 'npm', `${platformArch}-${device}`);
  const mainPkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const file = path.join(dir, 'package.json');
  let pkg;
  if (fs.existsSync(file)) pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  else {
    const template = path.join(root, 'npm', `${platformArch}-cpu`, 'package.json');
    pkg = fs.existsSync(template) ? JSON.parse(fs.readFileSync(template, 'utf8')) : { files: ['prebuilds/'] };
    pkg.name = `diffusion-search-${platformArch}-${device}`;
    pkg.description =
      `diffusion-search's prebuilt native addon for ${platformArch}, ${device} (libtorch is not ` +
      `included: see diffusion-search's README, Install)`;
    pkg.os = [process.platform];
    pkg.cpu = [process.arch];
    if (libc()) pkg.libc = [libc()];
  }
  if (pkg.version !== mainPkg.version) pkg.version = mainPkg.version;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
  return dir;
}

function place(binary, name, dirs) {
  for (const d of dirs) {
    const sub = path.join(d, 'prebuilds', platformArch);
    fs.mkdirSync(sub, { recursive: true });
    const dest = path.join(sub, name);
    fs.copyFileSync(binary, dest);
    // Symbols are not needed at run time (prebuildify strips too); keep the copy when strip is absent.
    spawnSync('strip', ['--strip-unneeded', dest], { stdio: 'ignore' });
    console.log(`prebuild: ${path.relative(root, dest) || dest} (${(fs.statSync(dest).size / 1e6).toFixed(2)} MB)`);
  }
}

const imported = opt('--import');
if (imported) {
  const found = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (NAME.test(e.name)) found.push(p);
    }
  };
  walk(path.resolve(imported));
  if (!found.length) {
    console.error(`prebuild: no tagged binaries under ${imported}`);
    process.exit(1);
  }
  for (const f of found) {
    const device = NAME.exec(path.basename(f))[2];
    place(f, path.basename(f), [root, variantDir(device)]);
  }
  process.exit(0);
}

const binary = path.resolve(opt('--binary') || path.join(root, 'build', 'Release', 'ds_native.node'));
if (!fs.existsSync(binary)) {
  if (opt('--binary')) {
    console.error(`prebuild: ${binary} does not exist`);
    process.exit(1);
  }
  console.log('prebuild: no build/Release/ds_native.node yet: building it (scripts/install/build-native.js)');
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install', 'build-native.js')], {
    stdio: 'inherit',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const tags = tagsOf(binary);
const name = nameOf(tags);
const dest = opt('--dest');
place(binary, name, dest ? [path.resolve(dest)] : [root, variantDir(tags.device)]);
if (tags.device === 'cpu' && tags.info.build?.cudaOff)
  console.log(`prebuild: cpu variant (${tags.info.build.cudaOff})`);
