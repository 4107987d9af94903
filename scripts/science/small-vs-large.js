#!/usr/bin/env node
// Small model with search vs large without (docs/science.md): node scripts/science/small-vs-large.js OUT_DIR
// [classes=Shirt,Pullover,Coat] [n=2] [seeds=4] [budgets=50,100,250,1000] [largeBudgets=...: fashion-flow's].
// MACs from scripts/science/flops.py.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const lib = require(path.join(__dirname, '..', '..', 'lib', 'bench', 'small-vs-large.js'));

const [out, ...kv] = process.argv.slice(2);
const a = Object.fromEntries(kv.map((s) => s.split('=')));
const flops = JSON.parse(execFileSync('/usr/bin/python3', [path.join(__dirname, 'flops.py')], { encoding: 'utf8' }));
const budgets = (a.budgets ?? '50,100,250,1000').split(',').map(Number);
const largeBudgets = (a.largeBudgets ?? a.budgets ?? '50,100,250,1000').split(',').map(Number);
// EvoSearch's plan needs 64 NFE at 20 steps.
const fits = (algorithm, budget) => algorithm !== 'evosearch' || budget >= 64;
const cells = [{ model: 'fashion-flow', algorithm: 'baseline', budget: 20 }];
for (const model of ['fashion-flow-small', 'fashion-flow'])
  for (const algorithm of model === 'fashion-flow' ? ['best-of-n'] : ['baseline', 'best-of-n', 'evosearch'])
    for (const budget of algorithm === 'baseline' ? [20] : model === 'fashion-flow' ? largeBudgets : budgets)
      if (fits(algorithm, budget)) cells.push({ model, algorithm, budget });
const o = {
  classes: (a.classes ?? 'Shirt,Pullover,Coat').split(','),
  cells,
  n: Number(a.n ?? 2),
  seeds: Number(a.seeds ?? 4),
  macsPerNfe: {
    'fashion-flow': flops['fashion-flow'].macs_per_nfe,
    'fashion-flow-small': flops['fashion-flow-small'].macs_per_nfe,
  },
  verifierMacs: flops.classifier.macs_per_score,
  verifier: 'classifier',
};
lib
  .smallVsLarge(o, (s) => process.stderr.write(s + '\n'))
  .then((rows) => {
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify({ options: o, flops, rows }, null, 1) + '\n');
    fs.writeFileSync(path.join(out, 'table.md'), lib.computeTable(rows));
    fs.writeFileSync(path.join(out, 'accuracy.svg'), lib.computeSvg(rows, 'eval_accuracy'));
    fs.writeFileSync(path.join(out, 'log-prob.svg'), lib.computeSvg(rows, 'eval_log_prob'));
    process.stdout.write(lib.computeTable(rows));
  });
