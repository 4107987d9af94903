'use strict';
/**
 * The fuzz child: reads case indices on stdin ("<index>\n"), runs each in this process and
 * reports on fd 3, synchronously, {start} before and {done, outcome} after, so that when the
 * process dies (signal, abort, exit) the parent knows which case was in flight.
 *   node fuzz/runner.js <seed> <tmpdir>
 */
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { makeCase } = require('./cases');
const { prepare } = require('./files');

const seed = Number(process.argv[2]);
const tmp = process.argv[3];
const report = (o) => fs.writeSync(3, JSON.stringify(o) + '\n');
let current = null;

// A stray exception or rejection is a failure of the case in flight; the state after it is
// unknown, so the runner exits and the parent starts a fresh one.
for (const ev of ['uncaughtException', 'unhandledRejection'])
  process.on(ev, (e) => {
    report({
      done: current,
      outcome: 'failure',
      reason: `${ev}: ${e?.stack?.split('\n').slice(0, 3).join(' | ') ?? e}`,
    });
    process.exit(70);
  });

// Harness self-test (test/fuzz.test.ts): abort or hang at a given index, to prove the parent
// charges the case in flight and carries on with a fresh runner.
const selfTest = { abort: Number(process.env.DS_FUZZ_ABORT_AT ?? -1), hang: Number(process.env.DS_FUZZ_HANG_AT ?? -1) };

async function runCase(index) {
  if (index === selfTest.abort) process.abort();
  if (index === selfTest.hang) await new Promise(() => setInterval(() => {}, 1000));
  const c = makeCase(seed, index);
  const dir = path.join(tmp, `c${index}`);
  const argv = prepare(c, dir);
  const { libraryOutcome } = require('./judge');
  const { DiffusionSearchError } = require('../lib/errors');
  switch (c.category) {
    case 'cli':
    case 'config':
      return require('./exec-cli').runCliInProcess(argv);
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: the library action runs as a tensor case
    case 'model':
      if (c.action !== 'library') return require('./exec-cli').runCliInProcess(argv);
    // falls through: the library action runs as a tensor case
    case 'tensor': {
      const lib = require('./exec-library');
      try {
        const out =
          c.category === 'model'
            ? await lib.runModelFile(c, require('./files').resolveTokens([c.file], dir)[0])
            : await lib.runTensor(c);
        await lib.drain(out);
        return libraryOutcome(undefined);
      } catch (e) {
        return libraryOutcome(e, DiffusionSearchError);
      }
    }
    case 'http':
      return require('./exec-http').runHttp(c, tmp);
  }
  throw new Error(`no category ${c.category}`);
}

process.chdir(tmp);
const queue = [];
let busy = false;
async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const index = queue.shift();
    current = index;
    report({ start: index });
    const t = performance.now();
    let r;
    try {
      r = await runCase(index);
    } catch (e) {
      r = { outcome: 'failure', reason: `runner: ${e?.stack ?? e}` };
    }
    fs.rmSync(path.join(tmp, `c${index}`), { recursive: true, force: true });
    report({ done: index, ms: Math.round(performance.now() - t), ...r });
    current = null;
  }
  busy = false;
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  queue.push(Number(line));
  void pump();
});
process.stdin.on('end', () => {
  const wait = () => (busy || queue.length ? setTimeout(wait, 20) : process.exit(0));
  wait();
});
