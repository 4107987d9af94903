#!/usr/bin/env node
// Verifier hacking table (docs/science.md): node scripts/science/hacking.js OUT_DIR [key=value ...]
// keys: model cls search (comma list; a+b = ensemble) judges algorithms budgets n seeds plainN.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { verifierHacking, hackingTable } = require(path.join(__dirname, '..', '..', 'lib', 'bench', 'hacking.js'));

const [out, ...kv] = process.argv.slice(2);
const a = Object.fromEntries(kv.map((s) => s.split('=')));
const list = (s, d) => (s ?? d).split(',');
const o = {
  model: a.model ?? 'fashion-flow',
  cls: a.cls ?? 'Shirt',
  searchVerifiers: list(a.search, 'classifier,realism,detail,classifier+realism+detail'),
  judges: list(a.judges, 'classifier,realism,detail,oracle'),
  algorithms: list(a.algorithms, 'best-of-n,evosearch'),
  budgets: list(a.budgets, '200,1000').map(Number),
  n: Number(a.n ?? 2),
  seeds: Number(a.seeds ?? 4),
  plainN: Number(a.plainN ?? 16),
};
verifierHacking(o, (s) => process.stderr.write(s + '\n')).then((r) => {
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify(r, null, 1) + '\n');
  fs.writeFileSync(path.join(out, 'table.md'), hackingTable(r.rows, o.judges));
  process.stdout.write(hackingTable(r.rows, o.judges));
});
