#!/usr/bin/env node
// Issue 27, plain sampling: where a search's CPU goes. 16 concurrent plain 20-step searches on one
// in-process engine (fashion-flow, fp32) for `seconds`; CPU per search of each thread, read from
// /proc/self/task/<tid>/stat (Linux), and the forward floor measured in the same process before and
// after. Child processes alternate small work run at once (the default) and queued
// (DS_INLINE_SMALL_WORK=0); prints min / median per mode.
// OMP_WAIT_POLICY=PASSIVE node scripts/dev/bench-27-threads.js [rounds] [seconds]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const lib = path.join(__dirname, '..', '..', 'lib');
const clients = 16;

/** CPU ms of every thread of this process, by thread id. */
function threadCpu() {
  const out = new Map();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const s = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) * 10); // utime + stime, USER_HZ = 100
    } catch {
      // the thread ended
    }
  }
  return out;
}

async function child(seconds) {
  const { createEngine } = require(path.join(lib, 'engine', 'engine.js'));
  const { forwardFloor } = require(path.join(lib, 'bench', 'forward-floor.js'));
  const engine = createEngine({});
  let k = 0;
  const body = () => {
    const seed = k++;
    return {
      model: 'fashion-flow',
      algorithm: 'best-of-n',
      budget: 20,
      steps: 20,
      n: 1,
      seed,
      class: seed % 10,
      eval: false,
    };
  };
  const run = async (s) => {
    const end = performance.now() + s * 1000;
    let n = 0;
    const loop = async () => {
      for (; performance.now() < end; n++) await engine.generate(body());
    };
    await Promise.all(Array.from({ length: clients }, loop));
    return n;
  };
  await run(2);
  const f0 = (await forwardFloor('fashion-flow', 32, 2)).cpu_ms_per_row;
  const a = threadCpu();
  const n = await run(seconds);
  const b = threadCpu();
  const f1 = (await forwardFloor('fashion-flow', 32, 2)).cpu_ms_per_row;
  const per = [...b].map(([tid, ms]) => (ms - (a.get(tid) ?? 0)) / n).sort((x, y) => y - x);
  const js = (b.get(String(process.pid)) - a.get(String(process.pid))) / n;
  const total = per.reduce((s, x) => s + x, 0);
  const floor = (20 * (f0 + f1)) / 2;
  console.log(JSON.stringify({ searches: n, total, js, forwards: per[0] + per[1], floor, reach: floor / total }));
  await engine.close();
}

function main() {
  const rounds = Number(process.argv[2] ?? 3);
  const seconds = process.argv[3] ?? '8';
  const modes = { 'small work at once': '1', queued: '0' };
  const got = {};
  for (let r = 0; r < rounds; r++)
    for (const [name, flag] of Object.entries(modes)) {
      const out = execFileSync(process.execPath, [__filename, '--child', seconds], {
        env: { ...process.env, DS_INLINE_SMALL_WORK: flag },
        encoding: 'utf8',
      });
      const row = JSON.parse(out.trim().split('\n').pop());
      (got[name] ??= []).push(row);
      console.log(
        `${name.padEnd(18)} ${row.searches} searches: ${row.total.toFixed(1)} CPU ms per search (JS thread ` +
          `${row.js.toFixed(2)}, two busiest ${row.forwards.toFixed(1)}), floor × 20 = ${row.floor.toFixed(1)}, ` +
          `reach ${(100 * row.reach).toFixed(0)} %`,
      );
    }
  const mm = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return `${s[0].toFixed(2)} / ${s[Math.floor((s.length - 1) / 2)].toFixed(2)}`;
  };
  for (const [name, rows] of Object.entries(got))
    console.log(
      `${name}: CPU ms per search ${mm(rows.map((x) => x.total))}, JS thread ${mm(rows.map((x) => x.js))}, ` +
        `reach ${mm(rows.map((x) => 100 * x.reach))} % (min / median)`,
    );
}

if (process.argv[2] === '--child')
  child(Number(process.argv[3])).then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
else main();
