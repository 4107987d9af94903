#!/usr/bin/env node
// Every op through the addon on the CPU and on a device, from the same inputs and seed:
// bitwise equal for noise, element-wise ops and indices, ~1e-6 relative for sphere_neighbours
// (double reductions in another order), ESS to 1e-12. Prints one line per op; exit 1 on any
// difference. Usage: node scripts/dev/gpu-equal.js [device]   (default cuda:0; needs lib/ built).
'use strict';
const { ops, tensor, info } = require('../../lib');

const device = process.argv[2] || 'cuda:0';
if (device.startsWith('cuda') && !info().cuda.available) {
  console.log(`gpu-equal: no CUDA device visible to libtorch (${info().torch.version}); skipped`);
  process.exit(0);
}

let failures = 0;
const rand = (n, lo = -2, hi = 2) => Float32Array.from({ length: n }, () => lo + (hi - lo) * Math.random());
const randIds = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 2 ** 40));
const host = async (t) => (t.device === 'cpu' ? t.toArray() : (await t.to('cpu')).toArray());

function report(what, a, b, tol) {
  let bad = 0;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (tol === 0) {
      if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) bad++;
    } else {
      const err = Math.abs(a[i] - b[i]) / (1 + Math.abs(a[i]));
      worst = Math.max(worst, err);
      if (!(err <= tol)) bad++;
    }
  }
  if (a.length !== b.length) bad = Math.max(bad, 1);
  failures += bad > 0;
  console.log(
    `${bad ? 'FAIL' : ' ok '} ${what}: ${a.length} ` +
      `values${tol ? `, worst rel ${worst.toExponential(2)}` : ', bitwise'}${bad ? `, ${bad} differ` : ''}`,
  );
}

// Runs fn(onDevice) on the CPU and on the device; fn returns tensors (or { tensors, scalars }).
async function both(what, fn, tol = 0) {
  const [c, g] = [await fn('cpu'), await fn(device)];
  for (let i = 0; i < c.length; i++) {
    if (typeof c[i] === 'number') report(`${what} [${i}]`, [c[i]], [g[i]], 1e-12);
    else report(what + (c.length > 1 ? ` [${i}]` : ''), await host(c[i]), await host(g[i]), tol);
  }
}

async function main() {
  console.log(`gpu-equal: cpu vs ${device}, libtorch ${info().torch.version}`);
  for (const [rows, dim] of [
    [8, 784],
    [5, 1023],
    [3, 4097],
    [64, 1 << 14],
  ]) {
    console.log(`-- ${rows} x ${dim}`);
    const seed = BigInt(Math.floor(Math.random() * 2 ** 52));
    const step = Math.floor(Math.random() * 1000);
    const ids = randIds(rows);
    const x = rand(rows * dim),
      v = rand(rows * dim),
      v2 = rand(rows * dim);
    const idx = Array.from({ length: rows }, () => Math.floor(Math.random() * rows));
    const sf = Array.from({ length: rows }, () => Math.random());
    const st = sf.map((s) => s + (1 - s) * Math.random());
    const on = (d, data) => tensor(data, [rows, dim], { device: d });
    await both('randn', (d) => Promise.all([ops.randn([rows, dim], { seed, ids, step, device: d })]));
    await both('uniform', (d) => Promise.all([ops.uniform([rows, dim], { seed, ids, step, device: d })]));
    await both('mutateGaussian', (d) => Promise.all([ops.mutateGaussian(on(d, x), idx, 0.3, { seed, ids, step })]));
    await both('mutateAdditive', (d) => Promise.all([ops.mutateAdditive(on(d, x), idx, sf, { seed, ids, step })]));
    await both(
      'sphereNeighbours',
      (d) => Promise.all([ops.sphereNeighbours(on(d, x), 0.9, { seed, ids, step })]),
      1e-5,
    );
    await both('renoise', (d) => Promise.all([ops.renoise(on(d, x), 'vp', sf, st, { seed, ids, step })]));
    await both('eulerStep', (d) => Promise.all([ops.eulerStep(on(d, x), on(d, v), st, sf)]));
    await both('heunCombine', (d) => Promise.all([ops.heunCombine(on(d, x), on(d, v), on(d, v2), st, sf)]));
    await both('ddimStep', async (d) => {
      const r = await ops.ddimStep(on(d, x), on(d, v), 'rectified_flow', st, sf, 0.7, { seed, ids, step });
      return [r.x, r.std];
    });
    await both('topk', async (d) => {
      const r = await ops.topk(on(d, x), Math.min(32, dim));
      return [r.values, r.indices];
    });
    const fitness = rand(rows),
      logW = rand(rows, -5, 0);
    await both('tournamentSelect', async (d) => [
      await ops.tournamentSelect(tensor(fitness, [rows], { device: d }), rows, { fraction: 0.3, seed, step }),
    ]);
    for (const method of ['multinomial', 'systematic'])
      await both(`resample ${method}`, async (d) => {
        const r = await ops.resample(tensor(logW, [rows], { device: d }), 2 * rows, { method, seed, step });
        return [r.indices, r.ess];
      });
  }
  console.log(failures ? `gpu-equal: ${failures} FAILED` : 'gpu-equal: all equal');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
