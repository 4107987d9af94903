#!/usr/bin/env node
// The libtorch locator (src/libtorch.ts) for the install hook and binding.gyp:
//   node scripts/install/libtorch.js include|libs|libdir|abi|version|list|json
// An installed package has it compiled in lib/. A git checkout runs the install hook before
// `npm run build`, so there lib/ may not exist yet: then src/libtorch.ts (node builtins only) is
// transpiled in memory with the typescript dev dependency, so one source serves both.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

function load() {
  const built = path.join(root, 'lib', 'libtorch.js');
  if (fs.existsSync(built)) return require(built);
  const source = path.join(root, 'src', 'libtorch.ts');
  const ts = require(require.resolve('typescript', { paths: [root] }));
  const { outputText } = ts.transpileModule(fs.readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: source,
  });
  const mod = { exports: {} };
  new Function('exports', 'require', 'module', '__filename', '__dirname', outputText)(
    mod.exports,
    require,
    mod,
    source,
    path.dirname(source),
  );
  return mod.exports;
}

module.exports = load();

if (require.main === module) {
  const { findLibtorch, describe, forBuild, linkFiles } = module.exports;
  const what = process.argv[2] || 'json';
  if (what === 'list') {
    for (const c of findLibtorch()) console.log(describe(c));
    process.exit(0);
  }
  const c = forBuild();
  if (!c) {
    console.error(
      'diffusion-search: no libtorch with headers found (looked at DIFFUSION_SEARCH_LIBTORCH, Torch_DIR, ' +
        'LD_LIBRARY_PATH, ' +
        "the system library directories and python3's PyTorch). Install one: apt-get install -y libtorch-dev, or " +
        'pip install torch.',
    );
    process.exit(1);
  }
  // binding.gyp's <!@(...) expansions split on whitespace: one item per word.
  if (what === 'include') console.log(c.includeDirs.join(' '));
  else if (what === 'libs') console.log(linkFiles(c).join(' '));
  else if (what === 'libdir') console.log(c.libDir);
  else if (what === 'abi') console.log(c.cxx11abi === null ? 1 : c.cxx11abi);
  else if (what === 'version') console.log(c.version);
  else console.log(JSON.stringify(c, null, 2));
}
