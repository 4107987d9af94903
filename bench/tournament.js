#!/usr/bin/env node
// node bench/tournament.js [--gmm-seeds 100] [--fashion-seeds 24] [--json] — EvoSearch selection: the
// reference's pool (every trajectory through the level) and ⌊0.9·P⌋ entrants (default) against the
// elites + latest children, and against 0.2 with replacement; paired seeds.
'use strict';
const path = require('node:path');
require(path.join(__dirname, '..', 'lib', 'bench', 'tournament.js')).main();
