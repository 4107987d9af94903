#!/usr/bin/env node
// npm run bench:serve [-- --json --seconds 15 --repeats 1 --clients 1,4,16 --scenarios best-of-n:100,evosearch:500
// --no-under-load]
// A loopback load generator against `diffusion-search serve`, cross-search batching on and off.
'use strict';
const path = require('node:path');
require(path.join(__dirname, '..', 'lib', 'bench', 'serve.js'))
  .main(process.argv.slice(2))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
