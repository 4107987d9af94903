'use strict';
/** Runs one CLI invocation inside this process (runMain over a fresh program), capturing its output and exit code. */
const { buildProgram } = require('../lib/cli/program');
const { runMain } = require('../lib/cli/run');
const { cliOutcome } = require('./judge');

async function runCliInProcess(argv) {
  const out = { stdout: '', stderr: '' };
  const saved = { o: process.stdout.write, e: process.stderr.write };
  const capture = (key) => (chunk, enc, cb) => {
    out[key] += String(chunk).slice(0, 20000 - out[key].length);
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') done();
    return true;
  };
  process.stdout.write = capture('stdout');
  process.stderr.write = capture('stderr');
  process.exitCode = undefined;
  try {
    await runMain(buildProgram(), ['node', 'diffusion-search', ...argv]);
  } finally {
    process.stdout.write = saved.o;
    process.stderr.write = saved.e;
  }
  const exit = process.exitCode ?? 0;
  process.exitCode = undefined;
  return { ...cliOutcome(exit, null, out.stderr), exit };
}

module.exports = { runCliInProcess };
