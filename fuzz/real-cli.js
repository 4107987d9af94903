'use strict';
/** Some argv cases again as real `diffusion-search` processes: the exit status and signal the shell sees. */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { prepare, ROOT } = require('./files');
const { cliOutcome } = require('./judge');

const BIN = path.join(ROOT, 'lib', 'cli', 'index.js');

function runOne(c, tmp, deadlineMs) {
  const dir = path.join(tmp, `real${c.index}`);
  const argv = prepare(c, dir);
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(process.execPath, [BIN, ...argv], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' },
    });
    let stderr = '',
      hung = false;
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const timer = setTimeout(() => ((hung = true), child.kill('SIGKILL')), deadlineMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      const ms = Math.round(performance.now() - t);
      if (hung) return resolve({ outcome: 'failure', reason: `hang: still running after ${deadlineMs} ms`, ms });
      resolve({ ...cliOutcome(code, signal, stderr), exit: code, ms });
    });
  });
}

async function runReal(cases, { tmp, deadlineMs, parallel = 2, onResult }) {
  const queue = [...cases];
  const results = new Map();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const r = await runOne(c, tmp, deadlineMs);
        results.set(c.index, r);
        onResult?.(c.index, r);
      }
    }),
  );
  return results;
}

module.exports = { runReal };
