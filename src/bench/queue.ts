/**
 * `npm run bench:queue`: what the queue costs. A redis-server of its own (loopback, AOF with
 * appendfsync everysec), `diffusion-search worker` processes, and the same 500-NFE searches run
 *   - by one engine in this process, one after another (the single-process baseline);
 *   - through the queue one at a time with one worker: the latency the queue adds per job
 *     (client's submit → result, minus the engine's own wall time for the job);
 *   - through the queue with 1, 2 and 3 worker processes, all jobs submitted at once: throughput.
 * Each configuration `repeats` times, each time right after a baseline run (the machine may be
 * shared: a queue run is compared with the baseline run next to it); min and median reported.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createEngine, type Engine } from '../engine/engine';
import type { GenerateOptions } from '../generate';
import { packageRoot } from '../native';
import { createQueue } from '../queue/client';

export interface QueueBenchOptions {
  model?: string;
  budget?: number;
  algorithm?: GenerateOptions['algorithm'];
  jobs?: number;
  repeats?: number;
  workers?: number[];
  threads?: number;
}

export interface QueueBenchReport {
  machine: { cpus: number; load: number[]; node: string };
  job: GenerateOptions;
  jobs: number;
  repeats: number;
  threads: number;
  baseline: { job_seconds: Stat; jobs_per_second: Stat };
  serial: { client_seconds: Stat; engine_seconds: Stat; added_ms: Stat; added_percent_of_job: number };
  /** vs_baseline: this run's jobs/s over the baseline run just before it. */
  workers: Array<{ workers: number; jobs_per_second: Stat; vs_baseline: Stat }>;
}

interface Stat {
  min: number;
  median: number;
}
const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 };
};

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitFor(f: () => boolean, what: string, ms = 60_000): Promise<void> {
  const t = Date.now();
  while (!f()) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The bench, in three parts over one redis-server of its own: (1) a single-process engine kept warm,
 * run right before every queue run (the baseline: the machine is shared); (2) one worker, one job
 * at a time: the latency the queue adds; (3) 1, 2, 3 workers with every job submitted at once.
 */
export async function benchQueue(o: QueueBenchOptions = {}): Promise<QueueBenchReport> {
  if (spawnSync('redis-server', ['--version']).status !== 0)
    throw new Error(
      'bench:queue needs redis-server (apt-get install redis-server, or scripts/install/install-deps.sh)',
    );
  const job: GenerateOptions = {
    model: o.model ?? 'fashion-flow',
    algorithm: o.algorithm ?? 'evosearch',
    budget: o.budget ?? 500,
    n: 1,
    eval: false,
  };
  const jobs = o.jobs ?? 6,
    repeats = o.repeats ?? 2,
    threads = o.threads ?? 1;
  const counts = o.workers ?? [1, 2, 3];
  const redis = await startRedis();
  const procs: ChildProcess[] = [];
  let engine: Engine | undefined;
  try {
    await waitFor(redis.ready, 'redis-server');
    engine = createEngine({ threads, maxActive: 1 });
    const ctx: BenchContext = {
      job,
      jobs,
      repeats,
      baseline: new Baseline(engine, job, jobs),
      workers: new Workers(redis.url, threads, procs),
    };
    await engine.generate({ ...job, seed: 999_999 });
    const serial = await serialLatency(ctx);
    const rows: QueueBenchReport['workers'] = [];
    for (const n of counts) rows.push(await throughput(ctx, n));
    const a = stat(serial.added),
      b = stat(ctx.baseline.jobSeconds);
    return {
      machine: { cpus: os.cpus().length, load: os.loadavg(), node: process.version },
      job,
      jobs,
      repeats,
      threads,
      baseline: { job_seconds: b, jobs_per_second: stat(ctx.baseline.rates) },
      serial: {
        client_seconds: stat(serial.clientS),
        engine_seconds: stat(serial.engineS),
        added_ms: a,
        added_percent_of_job: (100 * a.median) / 1000 / b.median,
      },
      workers: rows,
    };
  } finally {
    await engine?.close();
    procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL'));
    redis.proc.kill('SIGKILL');
    fs.rmSync(redis.dir, { recursive: true, force: true });
  }
}

interface BenchContext {
  job: GenerateOptions;
  jobs: number;
  repeats: number;
  baseline: Baseline;
  workers: Workers;
}

const seedOf = (r: number, k: number) => 1000 * r + k;

/** A redis-server on a free loopback port with its data in a temporary directory (append-only file). */
async function startRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-bench-redis-'));
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  return { proc, dir, url: `redis://127.0.0.1:${port}`, ready: () => /Ready to accept/.test(log) };
}

/** One engine in this process, kept warm for the whole bench; run(r) does repeat r's jobs one by one. */
class Baseline {
  readonly jobSeconds: number[] = [];
  readonly rates: number[] = [];
  constructor(
    private readonly engine: Engine,
    private readonly job: GenerateOptions,
    private readonly jobs: number,
  ) {}
  /** Jobs per second. */
  async run(r: number): Promise<number> {
    const t = performance.now();
    for (let k = 0; k < this.jobs; k++) {
      const t0 = performance.now();
      await this.engine.generate({ ...this.job, seed: seedOf(r, k) });
      this.jobSeconds.push((performance.now() - t0) / 1000);
    }
    const rate = this.jobs / ((performance.now() - t) / 1000);
    this.rates.push(rate);
    return rate;
  }
}

/** `diffusion-search worker` processes on one queue (every one started is in `procs`, for the final kill). */
class Workers {
  private readonly cli = path.join(packageRoot, 'lib', 'cli', 'index.js');
  constructor(
    readonly url: string,
    private readonly threads: number,
    private readonly procs: ChildProcess[],
  ) {}
  async start(queue: string, n: number): Promise<Array<{ p: ChildProcess }>> {
    const ws = Array.from({ length: n }, () => {
      const p = spawn(
        process.execPath,
        [this.cli, 'worker', '--redis', this.url, '--queue', queue, '--threads', String(this.threads)],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } },
      );
      let log = '';
      p.stderr!.on('data', (d) => (log += d));
      this.procs.push(p);
      return { p, log: () => log };
    });
    await Promise.all(ws.map((w) => waitFor(() => /ready: queue/.test(w.log()), 'a worker')));
    return ws;
  }
  async stop(ws: Array<{ p: ChildProcess }>): Promise<void> {
    await Promise.all(
      ws.map((w) => new Promise((r) => (w.p.exitCode !== null ? r(null) : (w.p.once('exit', r), w.p.kill('SIGTERM'))))),
    );
  }
}

/** One worker, one job at a time: client and engine seconds per job, and the ms the queue adds. */
async function serialLatency(ctx: BenchContext) {
  const { job, jobs, repeats } = ctx;
  const clientS: number[] = [],
    engineS: number[] = [],
    added: number[] = [];
  const q = createQueue({ connection: ctx.workers.url, name: 'serial' });
  const ws = await ctx.workers.start('serial', 1);
  try {
    await q.listen();
    await q.wait(await q.submit({ ...job, seed: 999_999 }));
    for (let r = 0; r < repeats; r++) {
      await ctx.baseline.run(r);
      for (let k = 0; k < jobs; k++) {
        const t0 = performance.now();
        const res = await q.wait(await q.submit({ ...job, seed: seedOf(r, k) }));
        const client = (performance.now() - t0) / 1000;
        const wall = res.report.wall_seconds as number;
        clientS.push(client);
        engineS.push(wall);
        added.push((client - wall) * 1000);
      }
    }
  } finally {
    await ctx.workers.stop(ws);
    await q.close();
  }
  return { clientS, engineS, added };
}

/** n workers with every job submitted at once: jobs per second, and its ratio to the baseline run just before. */
async function throughput(ctx: BenchContext, n: number): Promise<QueueBenchReport['workers'][number]> {
  const { job, jobs, repeats } = ctx;
  const q = createQueue({ connection: ctx.workers.url, name: `w${n}` });
  const ws = await ctx.workers.start(`w${n}`, n);
  const rates: number[] = [],
    ratios: number[] = [];
  try {
    await q.listen();
    await Promise.all(Array.from({ length: n }, async (_, i) => q.wait(await q.submit({ ...job, seed: 999_990 + i }))));
    for (let r = 0; r < repeats; r++) {
      const base = await ctx.baseline.run(r);
      const t = performance.now();
      const ids = await Promise.all(Array.from({ length: jobs }, (_, k) => q.submit({ ...job, seed: seedOf(r, k) })));
      await Promise.all(ids.map((id) => q.wait(id)));
      rates.push(jobs / ((performance.now() - t) / 1000));
      ratios.push(rates[rates.length - 1] / base);
    }
  } finally {
    await ctx.workers.stop(ws);
    await q.close();
  }
  return { workers: n, jobs_per_second: stat(rates), vs_baseline: stat(ratios) };
}

const f = (x: number, d = 3) => x.toFixed(d);

export function formatQueueBench(r: QueueBenchReport): string {
  const j = r.job;
  const lines = [
    `queue bench: ${j.model} ${j.algorithm} ${j.budget} NFE, ${r.jobs} jobs × ${r.repeats} repeats, ${r.threads} ` +
      `thread(s) per process; ${r.machine.cpus} CPUs, load ${r.machine.load.map((x) => x.toFixed(1)).join(' ')}`,
    `single-process engine: ${f(r.baseline.job_seconds.median)} s per job (min ${f(r.baseline.job_seconds.min)}), ` +
      `${f(r.baseline.jobs_per_second.median)} jobs/s (min ${f(r.baseline.jobs_per_second.min)})`,
    `queue, 1 worker, one job at a time: client ${f(r.serial.client_seconds.median)} s, engine ` +
      `${f(r.serial.engine_seconds.median)} s; added ${f(r.serial.added_ms.median, 1)} ms per job (min ` +
      `${f(r.serial.added_ms.min, 1)}) = ${f(r.serial.added_percent_of_job, 2)} % of a job`,
    '| workers | jobs/s median | jobs/s min | vs the engine run just before: median | min |',
    '|---:|---:|---:|---:|---:|',
    ...r.workers.map(
      (w) =>
        `| ${w.workers} | ${f(w.jobs_per_second.median)} | ${f(w.jobs_per_second.min)} | ` +
        `${f(w.vs_baseline.median, 2)}× | ${f(w.vs_baseline.min, 2)}× |`,
    ),
  ];
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const r = await benchQueue({
    model: arg('model'),
    budget: arg('budget') ? Number(arg('budget')) : undefined,
    jobs: arg('jobs') ? Number(arg('jobs')) : undefined,
    repeats: arg('repeats') ? Number(arg('repeats')) : undefined,
    threads: arg('threads') ? Number(arg('threads')) : undefined,
    workers: arg('workers') ? arg('workers')!.split(',').map(Number) : undefined,
  });
  process.stdout.write((argv.includes('--json') ? JSON.stringify(r, null, 2) : formatQueueBench(r)) + '\n');
}
