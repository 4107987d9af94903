#!/usr/bin/env node
// node bench/precision.js [--json --budget 100 --n 16]: the same searches in fp32 and bf16 on
// fashion-flow and fashion-t2i, judged by the eval classifier (exit 1 when a difference is over its bound).
'use strict';
const path = require('node:path');
require(path.join(__dirname, '..', 'lib', 'bench', 'precision.js'))
  .main(process.argv.slice(2))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
