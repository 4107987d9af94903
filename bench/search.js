#!/usr/bin/env node
// npm run bench:search [-- --json] — the same benchmark as `diffusion-search bench search`.
'use strict';
const path = require('node:path');
process.argv.splice(2, 0, 'bench', 'search');
require(path.join(__dirname, '..', 'lib', 'cli', 'index.js'));
