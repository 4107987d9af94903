#!/usr/bin/env node
// npm run soak [-- --minutes 10 --sequential 500 --concurrency 16 --window 60 --warmup 100 --warmup-concurrent 400
// --seed 1 --json]
//
// Soak of the engine and generate(): after a warm-up (`--warmup` searches one after
// another, then `--warmup-concurrent` at once; the baseline is sampled after it), `--sequential` searches one after
// another (a shared engine, and every 5th through generate(), which builds and closes an engine of
// its own), then `--concurrency` searches at once on one engine for `--minutes`, a tenth of them
// cancelled at a random moment. Mostly gmm2d (all algorithms), every 8th a small fashion-flow
// search. Between windows the load stops, the process settles (the stream workers give their
// cached buffers back after 1 s idle, two GCs) and RSS, external memory (the addon reports each
// tensor's bytes to V8), threads (/proc/self/status) and file descriptors (/proc/self/fd) are
// sampled; each window is compared with the warm-up's baseline. Exits 1 when a window leaves the
// bounds (RSS and external not over 5 % above the baseline, threads and fds not above it).
//
// Needs lib/ (npm run build:ts) and --expose-gc, which this script adds by re-running itself.
'use strict';
const { mulberry32 } = require('../fuzz/rng');
const fs = require('node:fs');
const path = require('node:path');

const lib = path.join(__dirname, '..', 'lib');
const { createEngine } = require(path.join(lib, 'engine', 'engine.js'));
const { generate } = require(path.join(lib, 'generate.js'));

const MB = 1024 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: the same request mix and cancellation times for the same seed. */
const rng = (seed) => mulberry32(seed >>> 0);

const GMM_ALGOS = ['best-of-n', 'evosearch', 'zero-order', 'beam', 'particles', 'paths'];
const CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** The k-th request of the mix. */
function request(k, r) {
  if (k % 8 === 7)
    return {
      model: 'fashion-flow',
      class: CLASSES[Math.floor(r() * CLASSES.length)],
      algorithm: r() < 0.5 ? 'best-of-n' : 'evosearch',
      budget: 48 + 16 * Math.floor(r() * 3),
      steps: 10,
      seed: k,
      eval: k % 32 === 31, // now and then the eval classifier too
    };
  return {
    model: 'gmm2d',
    algorithm: GMM_ALGOS[k % GMM_ALGOS.length],
    budget: 100 + 50 * Math.floor(r() * 4),
    n: 1 + (k % 2),
    steps: 10,
    seed: k,
    eval: false,
  };
}

function threadsNow() {
  const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}
const fdsNow = () => fs.readdirSync('/proc/self/fd').length - 1; // less the one readdir holds

/**
 * Lets the process go idle and collects garbage. A stream worker gives the allocator's cached
 * buffers back once the whole process has been idle for 1 s, checking every second: up to 2 s.
 */
async function settle() {
  await sleep(2500);
  for (let i = 0; i < 3; i++) {
    global.gc?.();
    await new Promise((r) => setImmediate(r)); // finalizers of collected tensor handles
  }
  await sleep(100);
}

async function measure(label, searches) {
  await settle();
  const m = process.memoryUsage();
  return {
    label,
    searches,
    rss: m.rss,
    external: m.external,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    arrayBuffers: m.arrayBuffers,
    threads: threadsNow(),
    fds: fdsNow(),
    t: performance.now(),
  };
}

/**
 * Runs the soak; returns the baseline, the windows, the deviations and the failures (empty when
 * every window stays in bounds). Options: sequential (searches), concurrency, and either minutes
 * (concurrent phase by time, windows of windowSeconds) or windows × perWindow (by count).
 */
async function soak(o = {}) {
  const opts = {
    sequential: 500,
    concurrency: 16,
    minutes: 10,
    windowSeconds: 60,
    windows: 0,
    perWindow: 0,
    warmup: 100,
    warmupConcurrent: 400,
    seed: 1,
    tolerance: 0.05,
    log: () => undefined,
    ...o,
  };
  const r = rng(opts.seed);
  const counts = { ok: 0, partial: 0, aborted: 0, failed: 0, generateCalls: 0 };
  const failures = [];
  const engine = createEngine({ searchesPerRequest: 4 });
  let k = 0;

  const one = async (useGenerate, cancel) => {
    const req = request(k++, r);
    const ctl = cancel ? new AbortController() : null;
    if (ctl) setTimeout(() => ctl.abort(), 5 + r() * 60).unref?.();
    try {
      const res = useGenerate
        ? (counts.generateCalls++, await generate(req, ctl ? { signal: ctl.signal } : {}))
        : await engine.generate(req, ctl ? { signal: ctl.signal } : {});
      res.complete ? counts.ok++ : counts.partial++;
      if (!res.samples.length && res.complete) failures.push(`request ${k - 1}: no samples`);
    } catch (e) {
      if (cancel && e && e.code === 'ABORTED') counts.aborted++;
      else {
        counts.failed++;
        failures.push(`request ${k - 1} (${JSON.stringify(req)}): ${e?.code} ${e?.message}`);
      }
    }
  };
  const concurrentRound = async (until) => {
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (!until()) await one(false, r() < 0.1);
      }),
    );
  };

  // Warm-up: every kind of request once, alone and concurrently (models load, pools start, JIT).
  const startedAt = performance.now();
  // Sequential, then concurrent, with every kind of request (fashion-flow with eval through
  // generate() is every 160th), so V8's young generation and the native heaps (glibc's arenas of
  // the worker threads grow under 16-way load) reach their working size.
  for (let i = 0; i < opts.warmup; i++) await one(i % 5 === 4, false);
  let n0 = k;
  await concurrentRound(() => k >= n0 + opts.warmupConcurrent);
  const base = await measure('baseline', k);
  opts.log(row(base, base));
  const windows = [];
  const finishedSearches = () => counts.ok + counts.partial + counts.aborted + counts.failed;

  // Sequential phase: a sample every 100 searches.
  for (let i = 0; i < opts.sequential; i++) {
    await one(i % 5 === 4, false);
    if ((i + 1) % 100 === 0 || i + 1 === opts.sequential) {
      windows.push(await measure(`sequential ${i + 1}`, finishedSearches()));
      opts.log(row(windows[windows.length - 1], base));
    }
  }

  // Concurrent phase: by time (minutes, windows of windowSeconds) or by count (windows × perWindow).
  if (opts.windows > 0) {
    for (let w = 0; w < opts.windows; w++) {
      n0 = k;
      await concurrentRound(() => k >= n0 + opts.perWindow);
      windows.push(await measure(`concurrent ${w + 1}`, finishedSearches()));
      opts.log(row(windows[windows.length - 1], base));
    }
  } else {
    const end = performance.now() + opts.minutes * 60_000;
    for (let w = 1; performance.now() < end; w++) {
      const stop = Math.min(end, performance.now() + opts.windowSeconds * 1000);
      await concurrentRound(() => performance.now() >= stop);
      windows.push(await measure(`concurrent ${w}`, finishedSearches()));
      opts.log(row(windows[windows.length - 1], base));
    }
  }
  const metrics = engine.metrics();
  await engine.close();
  const closed = await measure('engine closed', finishedSearches());
  opts.log(row(closed, base));

  const dev = (a, b) => (a - b) / b;
  // Growth beyond the tolerance fails; a window below the baseline is recorded (minDeviation), not a leak.
  const maxDev = { rss: 0, external: 0 },
    minDev = { rss: 0, external: 0 };
  for (const w of windows) {
    for (const key of ['rss', 'external']) {
      const d = dev(w[key], base[key]);
      maxDev[key] = Math.max(maxDev[key], d);
      minDev[key] = Math.min(minDev[key], d);
      if (d > opts.tolerance)
        failures.push(
          `${w.label}: ${key} ${(w[key] / MB).toFixed(1)} MiB, ${(100 * d).toFixed(1)} % above the baseline's ` +
            `${(base[key] / MB).toFixed(1)} MiB`,
        );
    }
    if (w.threads > base.threads) failures.push(`${w.label}: ${w.threads} threads, baseline ${base.threads}`);
    if (w.fds > base.fds) failures.push(`${w.label}: ${w.fds} file descriptors, baseline ${base.fds}`);
  }
  if (closed.fds > base.fds) failures.push(`engine closed: ${closed.fds} file descriptors, baseline ${base.fds}`);
  if (closed.threads > base.threads)
    failures.push(`engine closed: ${closed.threads} threads, baseline ${base.threads}`);
  return {
    searches: finishedSearches(),
    counts,
    seconds: (performance.now() - startedAt) / 1000,
    base,
    windows,
    closed,
    maxDeviation: maxDev,
    minDeviation: minDev,
    engine: {
      requests: metrics.requests,
      nfe: metrics.nfe,
      forwards: metrics.forwards,
      rowsPerForward: metrics.rowsPerForward,
      loads: metrics.loads,
    },
    failures,
  };
}

function row(s, base) {
  const pct = (a, b) => `${a >= b ? '+' : ''}${((100 * (a - b)) / b).toFixed(2)} %`;
  return (
    `${s.label.padEnd(16)} ${((s.t - base.t) / 1000).toFixed(0).padStart(5)} s  searches ` +
    `${String(s.searches).padStart(6)}  rss ${(s.rss / MB).toFixed(1)} MiB (${pct(s.rss, base.rss)})  ` +
    `external ${(s.external / MB).toFixed(2)} MiB (${pct(s.external, base.external)})  heap ` +
    `${(s.heapUsed / MB).toFixed(1)}/${(s.heapTotal / MB).toFixed(1)} MiB  threads ${s.threads}  fds ${s.fds}`
  );
}

function parseArgs(argv) {
  const o = {};
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => Number(argv[++i]);
    if (a === '--minutes') o.minutes = val();
    else if (a === '--sequential') o.sequential = val();
    else if (a === '--concurrency') o.concurrency = val();
    else if (a === '--window') o.windowSeconds = val();
    else if (a === '--seed') o.seed = val();
    else if (a === '--warmup') o.warmup = val();
    else if (a === '--warmup-concurrent') o.warmupConcurrent = val();
    else if (a === '--tolerance') o.tolerance = val() / 100;
    else if (a === '--json') json = true;
    else throw new Error(`unknown option ${a} (see the head of bench/soak.js)`);
  }
  return { o, json };
}

async function main(argv) {
  const { o, json } = parseArgs(argv);
  const log = json ? () => undefined : (line) => console.log(line);
  log(
    `soak: ${o.sequential ?? 500} sequential searches, then ${o.concurrency ?? 16} at once for ${o.minutes ?? 10} ` +
      `min (pid ${process.pid})`,
  );
  const res = await soak({ ...o, log });
  if (json) process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  else {
    console.log(`${res.searches} searches in ${res.seconds.toFixed(0)} s: ${JSON.stringify(res.counts)}`);
    const pct = (x) => `${(100 * x).toFixed(2)} %`;
    console.log(
      `deviation from the baseline, windows' max / min: rss ${pct(res.maxDeviation.rss)} / ` +
        `${pct(res.minDeviation.rss)}, external ${pct(res.maxDeviation.external)} / ${pct(res.minDeviation.external)}`,
    );
    console.log(
      `threads ${res.base.threads} → ${res.windows.at(-1)?.threads} (engine closed: ${res.closed.threads}); fds ` +
        `${res.base.fds} → ${res.windows.at(-1)?.fds} (engine closed: ${res.closed.fds})`,
    );
    console.log(res.failures.length ? `FAILED:\n  ${res.failures.join('\n  ')}` : 'ok: every window within bounds');
  }
  return res.failures.length ? 1 : 0;
}

module.exports = { soak, request, rng };

if (require.main === module) {
  if (!global.gc) {
    // Re-run with --expose-gc (settling needs explicit collections).
    const { spawnSync } = require('node:child_process');
    const r = spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
    });
    process.exit(r.status ?? 1);
  }
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
