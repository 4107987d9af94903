#!/usr/bin/env node
// npm run bench:kernels [-- --json] — the same benchmark as `diffusion-search bench kernels`.
'use strict';
const path = require('node:path');
process.argv.splice(2, 0, 'bench', 'kernels');
require(path.join(__dirname, '..', 'lib', 'cli', 'index.js'));
