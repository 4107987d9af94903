#!/usr/bin/env node
// node bench/tournament.js [--gmm-seeds 100] [--fashion-seeds 24] [--json] — EvoSearch tournament:
// 0.2 with replacement (earlier default) against the reference's 0.9 without (default), paired seeds.
'use strict';
const path = require('node:path');
require(path.join(__dirname, '..', 'lib', 'bench', 'tournament.js')).main();
