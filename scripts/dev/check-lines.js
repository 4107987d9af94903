#!/usr/bin/env node
// Lines of the project's own code stay within 120 characters. Biome's formatter wraps code at
// that width but leaves comments and string literals alone, so this checks what it cannot fix.
// Usage: node scripts/dev/check-lines.js [--max N]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const max = Number(process.argv[process.argv.indexOf('--max') + 1]) || 120;
const CODE = /\.(ts|js|mjs|cjs|py|sh)$/;
const SKIP = /^(test\/fixtures\/|lib\/|npm\/|native\/)/;

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root })
  .toString()
  .split('\n')
  .filter((f) => CODE.test(f) && !SKIP.test(f) && fs.existsSync(path.join(root, f)));
const long = [];
for (const f of files) {
  const lines = fs.readFileSync(path.join(root, f), 'utf8').split('\n');
  lines.forEach((l, i) => [...l].length > max && long.push(`${f}:${i + 1}: ${[...l].length} characters`));
}
if (long.length) {
  console.error(`${long.join('\n')}\ncheck-lines: ${long.length} line(s) over ${max} characters`);
  process.exit(1);
}
console.log(`check-lines: ${files.length} files, every line within ${max} characters`);
