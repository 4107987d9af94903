#!/usr/bin/env node
// No function in src/ runs over 80 lines unless the comment directly above it says why, starting
// "Over 80 lines" (a declarative option list, say). Long algorithms read better as short named steps.
// Usage: node scripts/dev/long-functions.js [--max N] [--all]   (--all lists every function over N)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.join(__dirname, '..', '..');
const max = Number(process.argv[process.argv.indexOf('--max') + 1]) || 80;
const all = process.argv.includes('--all');

function sourceFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

function nameOf(node) {
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) return parent.name.getText();
  if (ts.isCallExpression(parent)) return `${parent.expression.getText().split('\n').pop().trim()}(() => …)`;
  return '(anonymous)';
}

// The comment lines directly above the function's first line, and above the statement that holds it.
function hasReason(lines, startLine) {
  for (let i = startLine - 1; i >= 0; i--) {
    const l = lines[i].trim();
    if (!/^(\/\/|\/\*|\*)/.test(l)) return false;
    if (/^(\/\/|\/\*\*?|\*)\s*Over \d+ lines\b/.test(l)) return true;
  }
  return false;
}

const found = [];
for (const file of sourceFiles(path.join(root, 'src'))) {
  const text = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lines = text.split('\n');
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.end).line;
      const span = end - start + 1;
      if (span > max && (all || !hasReason(lines, start))) {
        found.push(`${path.relative(root, file)}:${start + 1}: ${nameOf(node)}, ${span} lines`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
if (found.length && !all) {
  const why = `long-functions: ${found.length} function(s) over ${max} lines with no "Over 80 lines" reason`;
  console.error(`${found.join('\n')}\n${why}`);
  process.exit(1);
}
console.log(all ? found.join('\n') : `long-functions: every function in src/ within ${max} lines or with a reason`);
