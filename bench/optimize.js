#!/usr/bin/env node
// node bench/optimize.js [--json --models fashion-flow,classifier]: each shipped denoiser, and each
// class-scored verifier and eval model, as saved, frozen and frozen with optimize_for_inference,
// per batch and thread count.
'use strict';
const path = require('node:path');
require(path.join(__dirname, '..', 'lib', 'bench', 'optimize.js'))
  .main(process.argv.slice(2))
  .catch((e) => {
    console.error(e);
    process.exit(1);
  });
