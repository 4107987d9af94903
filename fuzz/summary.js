'use strict';
/**
 * The run's figures: cases per category, outcomes (ok / clean error by code / failure), and the
 * failures with how to replay them.
 */

function summarize({ seed, cases, results, real, restarts, inProcessSeconds, realSeconds }) {
  const byCategory = {};
  const failures = [];
  const add = (cat, r, index, where) => {
    const b = (byCategory[cat] ??= { cases: 0, ok: 0, errors: 0, failures: 0, codes: {} });
    b.cases++;
    if (r.outcome === 'ok') b.ok++;
    else if (r.outcome.startsWith('error:')) {
      b.errors++;
      const code = r.outcome.slice(6);
      b.codes[code] = (b.codes[code] ?? 0) + 1;
    } else {
      b.failures++;
      failures.push({
        index,
        category: cases.get(index).category,
        where,
        reason: r.reason,
        replay: `npm run fuzz -- --seed ${seed} --case ${index}`,
      });
    }
  };
  for (const [i, r] of results) add(cases.get(i).category, r, i, 'in-process');
  for (const [i, r] of real) add('real-cli', r, i, 'real CLI process');
  const total = { cases: results.size, realProcesses: real.size, failures: failures.length };
  return {
    seed,
    total,
    byCategory,
    restarts,
    seconds: {
      inProcess: round(inProcessSeconds),
      real: round(realSeconds),
      total: round(inProcessSeconds + realSeconds),
    },
    failures,
  };
}

const round = (x) => Math.round(x * 10) / 10;

function formatSummary(s) {
  const lines = [
    `fuzz seed ${s.seed}: ${s.total.cases} cases in ${s.seconds.inProcess} s (runner restarts: ${s.restarts}), ` +
      `then ${s.total.realProcesses} real CLI processes in ${s.seconds.real} s; total ${s.seconds.total} s` +
      (s.seconds.cpu != null ? ` (${s.seconds.cpu} CPU-s with the children)` : ''),
    `${'category'.padEnd(10)} ${'cases'.padStart(6)} ${'ok'.padStart(5)} ${'errors'.padStart(7)} ` +
      `${'FAILED'.padStart(6)}  clean errors by code`,
  ];
  for (const [cat, b] of Object.entries(s.byCategory).sort()) {
    const codes = Object.entries(b.codes)
      .sort((a, z) => z[1] - a[1])
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    lines.push(
      `${cat.padEnd(10)} ${String(b.cases).padStart(6)} ${String(b.ok).padStart(5)} ` +
        `${String(b.errors).padStart(7)} ${String(b.failures).padStart(6)}  ${codes}`,
    );
  }
  if (!s.failures.length) lines.push('no failures');
  else {
    lines.push(`${s.failures.length} failure(s) (written to ${s.failuresFile}):`);
    for (const f of s.failures.slice(0, 40))
      lines.push(`  #${f.index} ${f.category} (${f.where}): ${f.reason}\n      replay: ${f.replay}`);
  }
  return lines.join('\n');
}

module.exports = { summarize, formatSummary };
