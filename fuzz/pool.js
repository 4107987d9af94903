'use strict';
/**
 * Runs case indices in runner children, `workers` at a time, one case in flight per child. A
 * child that dies (signal, abort, exit) or misses a case's deadline is charged with the case in
 * flight — a failure — and a fresh child takes the rest.
 */
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

function runPool({ seed, indices, workers, deadlineMs, tmp, onResult }) {
  const queue = [...indices];
  const results = new Map();
  let restarts = 0;
  const record = (index, r) => {
    results.set(index, r);
    onResult?.(index, r);
  };

  const worker = () =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(__dirname, 'runner.js'), String(seed), tmp], {
        stdio: ['pipe', 'ignore', 'pipe', 'pipe'],
        // One intra-op thread: the cases are tiny, and runners in parallel would oversubscribe the cores.
        env: {
          ...process.env,
          OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1',
          DS_POISON_OUTPUTS: process.env.DS_POISON_OUTPUTS ?? '1',
        },
      });
      let inFlight = null,
        timer = null,
        stderr = '';
      child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-3000)));
      child.stdin.on('error', () => {}); // the child may die before reading what was sent
      const next = () => {
        if (!queue.length) return child.stdin.end();
        inFlight = queue.shift();
        timer = setTimeout(() => {
          record(inFlight, { outcome: 'failure', reason: `hang: no answer within ${deadlineMs} ms`, ms: deadlineMs });
          inFlight = null;
          child.kill('SIGKILL');
        }, deadlineMs);
        child.stdin.write(`${inFlight}\n`);
      };
      readline.createInterface({ input: child.stdio[3] }).on('line', (line) => {
        let m;
        try {
          m = JSON.parse(line);
        } catch {
          return;
        }
        if (m.done === undefined || m.done !== inFlight) return;
        clearTimeout(timer);
        const { done, ...r } = m;
        record(done, r);
        inFlight = null;
        next();
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (inFlight !== null) {
          const tail = stderr.trim().split('\n').slice(-4).join(' | ').slice(0, 600);
          record(inFlight, {
            outcome: 'failure',
            reason: `runner died (${signal ? `signal ${signal}` : `exit ${code}`}) during the case: ${tail}`,
          });
          inFlight = null;
        }
        if (queue.length) {
          restarts++;
          resolve(worker());
        } else resolve();
      });
      next();
    });

  return Promise.all(Array.from({ length: Math.max(1, Math.min(workers, queue.length)) }, worker)).then(() => ({
    results,
    restarts,
  }));
}

module.exports = { runPool };
