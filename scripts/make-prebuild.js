#!/usr/bin/env node
// Copies the built addon into prebuilds/<platform>-<arch>/ under a node-gyp-build tag name, so a
// packed tarball (npm pack) installs without compiling where the same libtorch is present.
// The binary links libtorch dynamically: a prebuild made against Debian's libtorch-dev serves
// machines with that package; elsewhere `npm install` falls back to building from source.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'ds_native.node');
if (!fs.existsSync(built)) {
  console.error('make-prebuild: build/Release/ds_native.node is missing; run npm run build:native first');
  process.exit(1);
}
const libc = process.platform === 'linux' ? (process.report?.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl') : null;
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
const name = ['ds_native', 'napi', libc, 'node'].filter(Boolean).join('.');
fs.copyFileSync(built, path.join(dir, name));
console.log(`make-prebuild: ${path.relative(root, path.join(dir, name))}`);
