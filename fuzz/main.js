#!/usr/bin/env node
'use strict';
/**
 * The fuzzer: `npm run fuzz` (1,000 seeded cases, the CI run) or e.g.
 * `npm run fuzz -- --cases 20000 --seed 7`; replay failures with `--seed S --case I[,J...]`.
 *
 * Options: --cases N (1000)  --seed S (1)  --case I,J  --workers W (2)  --deadline MS (20000)
 *          --real K (30 real CLI processes)  --json (print the summary as one JSON line)
 *          --failures FILE (default out/fuzz/failures-seed<S>.json)
 * Exit status: 0 when no case failed, 1 otherwise.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { makeCase, describe } = require('./cases');
const { runPool } = require('./pool');
const { runReal } = require('./real-cli');
const { summarize, formatSummary } = require('./summary');
const { ROOT } = require('./files');

function parseArgs(argv) {
  const o = { cases: 1000, seed: 1, workers: 2, deadline: 20000, real: 30, json: false, only: null, failures: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i],
      v = () => argv[++i];
    const int = (x, name) => {
      const n = Number(x);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${x}'`);
      return n;
    };
    if (a === '--cases') o.cases = int(v(), a);
    else if (a === '--seed') o.seed = int(v(), a);
    else if (a === '--workers') o.workers = Math.max(1, int(v(), a));
    else if (a === '--deadline') o.deadline = int(v(), a);
    else if (a === '--real') o.real = int(v(), a);
    else if (a === '--case')
      o.only = [
        ...(o.only ?? []),
        ...v()
          .split(',')
          .map((x) => int(x, a)),
      ];
    else if (a === '--failures') o.failures = v();
    else if (a === '--json') o.json = true;
    else throw new Error(`unknown option ${a} (see fuzz/main.js)`);
  }
  return o;
}

/**
 * CPU seconds of this process and its reaped children (Linux /proc; null elsewhere): wall time depends
 * on what else the machine runs, this less so.
 */
function cpuSeconds() {
  try {
    const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // Fields 14-17 of stat (utime, stime, cutime, cstime) are 11-14 here, in clock ticks (100 per second on Linux).
    return Math.round(f.slice(11, 15).reduce((a, x) => a + Number(x), 0)) / 100;
  } catch {
    return null;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const indices = o.only ?? Array.from({ length: o.cases }, (_, i) => i);
  const cases = new Map(indices.map((i) => [i, makeCase(o.seed, i)]));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-fuzz-'));
  const t0 = performance.now();
  let shown = 0;
  const progress = (i, r) => {
    if (r.outcome === 'failure' && !o.json) process.stderr.write(`FAIL #${i} ${cases.get(i).category}: ${r.reason}\n`);
    if (!o.json && ++shown % 250 === 0) process.stderr.write(`  ${shown} cases...\n`);
  };
  const { results, restarts } = await runPool({
    seed: o.seed,
    indices,
    workers: o.workers,
    deadlineMs: o.deadline,
    tmp,
    onResult: progress,
  });
  const inProcessSeconds = (performance.now() - t0) / 1000;

  // Real processes: argv cases spread evenly over the run (a replay runs them all).
  // (An argument with a NUL byte cannot reach a real process: spawn refuses it.)
  const argvCases = indices.map((i) => cases.get(i)).filter((c) => c.argv?.every((a) => !a.includes('\0')));
  const step = Math.max(1, Math.floor(argvCases.length / Math.max(1, o.real)));
  const picked = o.only ? argvCases : argvCases.filter((_, k) => k % step === 0).slice(0, o.real);
  const t1 = performance.now();
  const real = await runReal(picked, { tmp, deadlineMs: o.deadline, onResult: progress });
  const realSeconds = (performance.now() - t1) / 1000;
  fs.rmSync(tmp, { recursive: true, force: true });

  const s = summarize({ seed: o.seed, cases, results, real, restarts, inProcessSeconds, realSeconds });
  s.seconds.cpu = cpuSeconds();
  const failed = [...s.failures];
  if (failed.length) {
    const file = o.failures ?? path.join(ROOT, 'out', 'fuzz', `failures-seed${o.seed}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(
      file,
      JSON.stringify(
        failed.map((f) => ({ ...f, case: JSON.parse(describe(cases.get(f.index))) })),
        null,
        2,
      ) + '\n',
    );
    s.failuresFile = file;
  }
  process.stdout.write(o.json ? JSON.stringify(s) + '\n' : formatSummary(s) + '\n');
  process.exitCode = failed.length ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${e.stack ?? e}\n`);
  process.exitCode = 2;
});
