#!/usr/bin/env node
// npm run bench:model [-- --threads 2 --json | --e2e] — the same as `diffusion-search bench model`.
'use strict';
const path = require('node:path');
process.argv.splice(2, 0, 'bench', 'model');
require(path.join(__dirname, '..', 'lib', 'cli', 'index.js'));
