#!/usr/bin/env node
/**
 * How close each algorithm gets to the reward-tilted target p* ∝ p·exp(r/α) on gmm2d, where p*
 * is closed form (a Gaussian prior mixture tilted by a Gaussian reward is a Gaussian mixture).
 * Per (algorithm, budget): G independent groups of m searches (one returned sample each, seeds
 * apart); per group the TV distance of the mode weights (each sample to the p* component of
 * highest responsibility) and the unbiased MMD² to p* (Gaussian kernel, closed form against the
 * mixture); mean and 95 % t-interval over the groups. 'exact p*' rows draw m samples from p*
 * itself: the floor that m samples allow.
 *   node scripts/science/gmm2d-tilted.js [--alpha 0.5] [--groups 8] [--m 64] [--budgets 250,1000,4000]
 *     [--algorithms all] [--json out.json]
 */
const path = require('node:path');
const root = path.join(__dirname, '..', '..');
const { generate } = require(path.join(root, 'lib'));
const { loadModule } = require(path.join(root, 'lib', 'module'));

const args = {};
process.argv.slice(2).forEach((v, i, all) => {
  if (v.startsWith('--')) args[v.slice(2)] = all[i + 1];
});
const alpha = Number(args.alpha ?? 0.5);
const G = Number(args.groups ?? 8);
const m = Number(args.m ?? 64);
const budgets = (args.budgets ?? '250,1000,4000').split(',').map(Number);
const H = 1; // kernel bandwidth: the modes' spacing is a few units, their widths 0.3–0.4
const T975 = { 2: 12.71, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 10: 2.262, 12: 2.201, 16: 2.131 };

/** Every cell: the algorithm, its request fields. */
const CELLS = [
  ['baseline (p, α = ∞)', { algorithm: 'baseline' }],
  ['best-of-n', { algorithm: 'best-of-n' }],
  ['best-of-n, alpha', { algorithm: 'best-of-n', alpha }],
  ['particles (λ = 10)', { algorithm: 'particles' }],
  ['particles, alpha', { algorithm: 'particles', alpha }],
  ['zero-order', { algorithm: 'zero-order' }],
  ['paths', { algorithm: 'paths' }],
  ['beam', { algorithm: 'beam' }],
  ['evosearch', { algorithm: 'evosearch' }],
];

/** p* = Σ w'_k N(μ'_k, s'_k² I): the prior's components times exp(−‖x − c‖²/(2 s² α)). */
function tilted(card, a) {
  const { weights, means, stds } = card.prior;
  const { c, s } = card.reward;
  const S2 = a * s * s;
  const comps = weights.map((w, k) => {
    const v = stds[k] ** 2;
    const v2 = 1 / (1 / v + 1 / S2);
    const mu = means[k].map((mk, d) => v2 * (mk / v + c[d] / S2));
    const d2 = (means[k][0] - c[0]) ** 2 + (means[k][1] - c[1]) ** 2;
    const logw = Math.log(w) - Math.log(2 * Math.PI * (v + S2)) - d2 / (2 * (v + S2));
    return { logw, mu, v: v2 };
  });
  const top = Math.max(...comps.map((q) => q.logw));
  const z = comps.reduce((t, q) => t + Math.exp(q.logw - top), 0);
  return comps.map((q) => ({ w: Math.exp(q.logw - top) / z, mu: q.mu, v: q.v }));
}

const d2 = (a, b) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2;
/** E k(x, y) for x ~ N(mu, v I) in 2-D, k = exp(−‖x − y‖²/(2H²)). */
const kGauss = (mu, v, y) => ((H * H) / (H * H + v)) * Math.exp(-d2(mu, y) / (2 * (H * H + v)));

function modeOf(pstar, x) {
  let best = 0,
    bl = -Infinity;
  pstar.forEach((q, k) => {
    const l = Math.log(q.w + 1e-300) - Math.log(q.v) - d2(x, q.mu) / (2 * q.v);
    if (l > bl) (bl = l), (best = k);
  });
  return best;
}

function tv(pstar, xs) {
  const counts = pstar.map(() => 0);
  for (const x of xs) counts[modeOf(pstar, x)]++;
  return 0.5 * pstar.reduce((t, q, k) => t + Math.abs(counts[k] / xs.length - q.w), 0);
}

function mmd2(pstar, xs) {
  const n = xs.length;
  let yy = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) yy += Math.exp(-d2(xs[i], xs[j]) / (2 * H * H));
  yy /= n * (n - 1);
  let xy = 0;
  for (const y of xs) for (const q of pstar) xy += (q.w * kGauss(q.mu, q.v, y)) / n;
  let xx = 0;
  for (const a of pstar) for (const b of pstar) xx += a.w * b.w * kGauss(a.mu, a.v + b.v, b.mu);
  return yy - 2 * xy + xx;
}

function interval(xs) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  return { mean, half: ((T975[n - 1] ?? 1.96) * sd) / Math.sqrt(n) };
}

/** m exact draws from p* (Box–Muller on a seeded stream): the floor of TV and MMD at m samples. */
function exactDraws(pstar, count, seed) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  return Array.from({ length: count }, () => {
    let r = u(),
      k = 0;
    while (k < pstar.length - 1 && r > pstar[k].w) (r -= pstar[k].w), k++;
    const q = pstar[k];
    const rad = Math.sqrt(-2 * Math.log(u())),
      th = 2 * Math.PI * u();
    return [q.mu[0] + Math.sqrt(q.v) * rad * Math.cos(th), q.mu[1] + Math.sqrt(q.v) * rad * Math.sin(th)];
  });
}

async function main() {
  const card = (await loadModule(path.join(root, 'models', 'gmm2d.pt'))).card;
  const pstar = tilted(card, alpha);
  console.log(`alpha ${alpha}: p* mode weights ${pstar.map((q) => q.w.toFixed(4)).join(', ')}; ${G} groups × ${m}`);
  const rows = [];
  const floor = { tv: [], mmd: [] };
  for (let g = 0; g < G; g++) {
    const xs = exactDraws(pstar, m, 1000 + g);
    floor.tv.push(tv(pstar, xs));
    floor.mmd.push(mmd2(pstar, xs));
  }
  rows.push({ cell: 'exact p* (floor)', budget: null, tv: interval(floor.tv), mmd2: interval(floor.mmd) });
  print(rows[0]);
  const only = args.algorithms && args.algorithms !== 'all' ? args.algorithms.split(',') : null;
  for (const [name, fields] of CELLS) {
    if (only && !only.includes(fields.algorithm)) continue;
    for (const budget of fields.algorithm === 'baseline' ? [budgets[0]] : budgets) {
      const t0 = performance.now();
      const per = { tv: [], mmd: [], weights: pstar.map(() => 0) };
      for (let g = 0; g < G; g++) {
        const r = await generate({ model: 'gmm2d', budget, n: m, seed: 7919 * (g + 1), ...fields });
        const xs = Array.from({ length: r.shape[0] }, (_, i) => [r.samples[2 * i], r.samples[2 * i + 1]]);
        per.tv.push(tv(pstar, xs));
        per.mmd.push(mmd2(pstar, xs));
        for (const x of xs) per.weights[modeOf(pstar, x)] += 1 / (G * xs.length);
      }
      const row = { cell: name, budget, tv: interval(per.tv), mmd2: interval(per.mmd), weights: per.weights };
      row.seconds = (performance.now() - t0) / 1000;
      rows.push(row);
      print(row);
    }
  }
  if (args.json) require('node:fs').writeFileSync(args.json, JSON.stringify({ alpha, G, m, H, pstar, rows }, null, 1));
}

function print(r) {
  const f = (i, d = 3) => `${i.mean.toFixed(d)} ± ${i.half.toFixed(d)}`;
  const w = r.weights ? `  weights ${r.weights.map((x) => x.toFixed(3)).join(' ')}` : '';
  const t = r.seconds ? `  ${r.seconds.toFixed(1)} s` : '';
  console.log(
    `${r.cell.padEnd(22)} ${String(r.budget ?? '').padStart(5)}  TV ${f(r.tv)}  MMD² ${f(r.mmd2, 4)}${w}${t}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
