#!/usr/bin/env node
// The npm mirror of this workplace serves only this platform's optional binaries (e.g. rollup's),
// so `npm install` writes a lock without the other platforms' entries and `npm ci` then refuses
// it. This adds a bare optional entry for each: npm skips them as it would any optional package
// it cannot install. Run after changing dependencies: node scripts/dev/fix-lockfile.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
let added = 0;
for (const entry of Object.values(lock.packages)) {
  for (const [dep, range] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${dep}`;
    if (lock.packages[key]) continue;
    lock.packages[key] = { version: String(range).replace(/^[~^]/, ''), dev: entry.dev ?? false, optional: true };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`fix-lockfile: added ${added} optional entries`);
