#!/usr/bin/env node
// npm run bench:queue [-- --json --jobs 6 --repeats 2 --workers 1,2,3 --threads 1 --model fashion-flow --budget 500]
// The queue's overhead: a single-process engine against BullMQ workers on a local redis-server.
'use strict';
const path = require('node:path');
require(path.join(__dirname, '..', 'lib', 'bench', 'queue.js'))
  .main(process.argv.slice(2))
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
