#!/usr/bin/env node
// Issue 27, item 3: a lone search (one request, as `generate` runs it) with one forward slot on
// both intra-op threads (the engine's default before it took a slot per core), two slots sharing
// them (the default now: calls cut across them, one thread each when both run) and one slot on one
// thread. Calls of fewer than 16 rows run the small-call copy on one thread in all three. Each
// engine is warmed with a small request first (model load and the copy's check are not timed).
// Configurations alternate within each round; prints min / median seconds.
// OMP_WAIT_POLICY=PASSIVE node scripts/dev/bench-27-lone.js [rounds]
'use strict';
const path = require('node:path');
const { createEngine } = require(path.join(__dirname, '..', '..', 'lib', 'engine', 'engine.js'));

const rounds = Number(process.argv[2] ?? 3);
const requests = {
  'evosearch 500': { model: 'fashion-flow', algorithm: 'evosearch', budget: 500, n: 1, class: 6, eval: false },
  'best-of-n 500 x 4': { model: 'fashion-flow', algorithm: 'best-of-n', budget: 500, n: 4, class: 6, eval: false },
  'plain 20 steps': {
    model: 'fashion-flow',
    algorithm: 'best-of-n',
    budget: 20,
    steps: 20,
    n: 1,
    class: 6,
    eval: false,
  },
};
const cores = require('node:os').cpus().length;
const configs = {
  'one slot': { parallelForwards: 1, threads: cores },
  'two slots': { parallelForwards: 2, threads: cores },
  'one thread': { parallelForwards: 1, threads: 1 },
};
const warm = { model: 'fashion-flow', algorithm: 'best-of-n', budget: 40, steps: 10, n: 1, eval: false };
const base = { maxQueue: Infinity, maxActive: Infinity, memoryLimit: Infinity, searchesPerRequest: 2 };

async function main() {
  const times = {};
  for (let round = 0; round < rounds; round++)
    for (const [rn, r] of Object.entries(requests))
      for (const [cn, c] of Object.entries(configs)) {
        const e = createEngine({ ...base, ...c });
        await e.generate({ ...warm, seed: 99 });
        const m0 = e.metrics();
        const t0 = performance.now();
        await e.generate({ ...r, seed: round });
        const s = (performance.now() - t0) / 1000;
        const m = e.metrics();
        await e.close();
        (times[`${rn} | ${cn}`] ??= []).push(s);
        console.error(`${rn} | ${cn}: ${s.toFixed(2)} s, ${m.forwards - m0.forwards} forwards`);
      }
  const os = require('node:os');
  console.log(
    `${os.cpus().length} × ${os.cpus()[0].model}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  for (const [k, xs] of Object.entries(times)) {
    const s = [...xs].sort((a, b) => a - b);
    console.log(
      `${k}: min ${s[0].toFixed(2)} s, median ${s[Math.floor(s.length / 2)].toFixed(2)} s (${xs.length} runs)`,
    );
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
