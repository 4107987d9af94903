#!/usr/bin/env node
/**
 * The diverse top-k on the fashion models: per λ, the same searches (same seeds, so the same
 * scored samples) keep 4 samples each, by reward alone (λ = 0) or by greedy MMR. Per λ: the Vendi
 * score and mean pairwise cosine distance of each search's kept 4 in the eval model's feature space
 * (report.trace[i].diversity), the kept samples' mean reward, and the eval accuracy of the kept
 * rows (fashion-flow: the class; fashion-t2i: class and all stated attributes); means with 95 %
 * intervals (t over searches; Wilson for accuracies).
 *   node scripts/science/diverse-topk.js [--lambdas 0,0.5,1,2] [--n 12] [--budget 500] [--json out.json]
 */
const path = require('node:path');
const { generate } = require(path.join(__dirname, '..', '..', 'lib'));

const args = {};
process.argv.slice(2).forEach((v, i, all) => {
  if (v.startsWith('--')) args[v.slice(2)] = all[i + 1];
});
const lambdas = (args.lambdas ?? '0,0.5,1,2').split(',').map(Number);
const n = Number(args.n ?? 12);
const budget = Number(args.budget ?? 500);
const algorithm = args.algorithm ?? 'evosearch';
const keep = 4;
const prompts = ['a large grey shirt', 'a small dark coat', 'a large bright pullover'];
const TASKS = [
  { task: 'fashion-flow, Shirt', fields: { model: 'fashion-flow', class: 'Shirt', n } },
  { task: 'fashion-t2i, 3 held-out prompts', fields: { model: 'fashion-t2i', prompt: prompts, n: n / prompts.length } },
];
const T975 = [12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179];

function tInterval(xs) {
  const k = xs.length;
  const m = xs.reduce((a, b) => a + b, 0) / k;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, k - 1));
  return [m, ((T975[k - 2] ?? 1.96) * sd) / Math.sqrt(k)];
}

function wilson(p, k) {
  const z = 1.96,
    d = 1 + (z * z) / k;
  const c = (p + (z * z) / (2 * k)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / k + (z * z) / (4 * k * k))) / d;
  return [c - h, c + h];
}

async function cell(t, lambda) {
  const r = await generate({ ...t.fields, algorithm, budget, keep, diversity: lambda, seed: 1 });
  const rep = r.report;
  const vendi = rep.trace.map((s) => s.diversity.vendi);
  const mcd = rep.trace.map((s) => s.diversity.mean_cosine_distance);
  let at = 0;
  const reward = rep.kept.map((k) => {
    const m = rep.rewards.slice(at, at + k).reduce((a, b) => a + b, 0) / k;
    at += k;
    return m;
  });
  const rows = r.shape[0];
  const acc = rep.eval ? rep.eval.accuracy : rep.prompt_eval.classes.accuracy;
  const attr = rep.prompt_eval ? rep.prompt_eval.all_attributes_accuracy : null;
  return {
    task: t.task,
    lambda,
    rows,
    vendi: tInterval(vendi),
    mcd: tInterval(mcd),
    reward: tInterval(reward),
    acc,
    attr,
  };
}

async function main() {
  const out = [];
  for (const t of TASKS)
    for (const lambda of lambdas) {
      const c = await cell(t, lambda);
      out.push(c);
      const f = ([m, h], d = 3) => `${m.toFixed(d)} ± ${h.toFixed(d)}`;
      const w = (p) =>
        p === null
          ? 'n/a'
          : `${(100 * p).toFixed(1)} % [${wilson(p, c.rows)
              .map((x) => (100 * x).toFixed(0))
              .join('–')}]`;
      const attr = c.attr === null ? '—' : w(c.attr);
      console.log(
        `| ${c.task} | ${lambda} | ${f(c.vendi, 2)} | ${f(c.mcd)} | ${f(c.reward)} | ${w(c.acc)} | ${attr} |`,
      );
    }
  if (args.json)
    require('node:fs').writeFileSync(args.json, JSON.stringify({ algorithm, budget, n, keep, out }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
