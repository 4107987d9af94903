/**
 * `diffusion-search worker | submit | jobs`: search jobs on BullMQ and Redis (src/queue).
 *   worker --redis redis://127.0.0.1:6379 --queue q [--concurrency N]   runs jobs until SIGTERM/SIGINT
 *   submit --redis … --queue q <generate flags> [--key K] [--wait]      prints the job id (--wait: the report)
 *   jobs   --redis … --queue q                                          counts by state
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { DiffusionSearchError } from '../errors';
import { writeSampleFiles } from '../io/sample-files';
// bullmq and ioredis load only when a queue command runs (every other command starts as fast as before).
const queueClient = () => require('../queue/client') as typeof import('../queue/client');
const queueWorker = () => require('../queue/worker') as typeof import('../queue/worker');
const startup = () => require('../queue/startup') as typeof import('../queue/startup');
import { addGenerate, collectOptions, prepareOut } from './generate-command';
import {
  addAllowRemoteFlag,
  addRemoteVerifierFlags,
  parseAllowedOrigins,
  remoteVerifierOptions,
} from './remote-verifier-flags';
import { checkConfigKeys, int, num, precisionFlag, readConfig } from './options';

const REDIS = 'redis://127.0.0.1:6379';
const QUEUE = 'diffusion-search';

/** --rate-limit 10/60: at most 10 jobs started per 60 s. */
function rateLimit(v: unknown): { max: number; durationMs: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\/(\d+(?:\.\d+)?)$/.exec(String(v));
  if (!m || Number(m[1]) < 1 || !(Number(m[2]) > 0))
    throw new DiffusionSearchError(`--rate-limit must be <jobs>/<seconds>, e.g. 10/60, got '${v}'`, 'ARGUMENT');
  return { max: Number(m[1]), durationMs: Number(m[2]) * 1000 };
}

// Over 80 lines by design: a declarative list of commands, flags and help text, one line
// each, that reads top to bottom as the CLI's surface; splitting it would scatter that list.
export function addQueueCommands(program: Command): void {
  const worker = program
    .command('worker')
    .description('take search jobs from a BullMQ queue on Redis and run them in one engine (until SIGTERM or Ctrl-C)')
    .option('--redis <url>', 'Redis URL', REDIS)
    .option('--queue <name>', 'queue name', QUEUE)
    .option('--concurrency <n>', 'jobs run at once (batched together by the engine)', '1')
    .option('--device <device>', 'cpu or cuda[:N]', 'cpu')
    .option('--precision <p>', "the denoisers' forwards: fp32 (default) or bf16 (CPUs with AVX512_BF16 or AMX)")
    .option('--threads <n>', 'intra-op threads')
    .option('--max-batch <n>', 'most rows per model forward')
    .option(
      '--memory-limit <MiB>',
      'ceiling on the estimated memory of the jobs running (default: half the RAM on CPU, none on CUDA)',
    )
    .option(
      '--lock-duration <s>',
      'shortest lock of a running job, renewed every half of it; ' +
        "a dead worker's job is taken over after about its lock",
      '30',
    )
    .option(
      '--max-lock-duration <s>',
      "longest lock: a job's lock is 1/20 of its expected length, between the two",
      '600',
    )
    .option('--stalled-interval <s>', 'how often to look for jobs whose worker died (default: the lock duration)')
    .option(
      '--results-dir <dir>',
      'results larger than --inline-max-bytes go here (a directory clients can read); without it all stay in Redis',
    )
    .option('--inline-max-bytes <n>', 'results up to this size stay in Redis', String(1024 * 1024))
    .option(
      '--rate-limit <jobs/s>',
      'at most this many jobs started per period by all workers of the queue, e.g. 10/60',
    )
    .option('--models-dir <dir>', 'directory whose .pt files jobs may name (besides the shipped models)')
    .option('--max-job-nfe <n>', 'most NFE one job may ask for (n × budget × prompts)', '10000000')
    .option(
      '--drain <s>',
      'on SIGTERM, wait this long for running jobs; the rest are stopped and handed back to the queue',
      '30',
    );
  addAllowRemoteFlag(worker, 'jobs');
  addRemoteVerifierFlags(worker)
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search worker --redis redis://127.0.0.1:6379 --queue q\n' +
        '  $ diffusion-search worker --queue q --concurrency 4 --device cuda:0 --results-dir /mnt/results\n' +
        '  $ diffusion-search worker --queue q --allow-remote-verifiers https://grader:8443 --verifier-headers-file h',
    )
    .action(async (f: Record<string, string | boolean | undefined>) => {
      const log = (line: string) => process.stderr.write(`worker ${process.pid}: ${line}\n`);
      // Every start-up problem before anything connects: one line each, exit 2 (./run).
      if (f.resultsDir !== undefined) startup().checkDir('--results-dir', String(f.resultsDir), { write: true });
      if (f.modelsDir !== undefined) startup().checkDir('--models-dir', String(f.modelsDir));
      const allowed = parseAllowedOrigins(f.allowRemoteVerifiers);
      const remoteVerifier = remoteVerifierOptions(f);
      await startup().probeRedis(String(f.redis));
      const memoryLimit = num('memory-limit', f.memoryLimit);
      const lock = num('lock-duration', f.lockDuration)!;
      const stalled = num('stalled-interval', f.stalledInterval);
      const w = queueWorker().createWorker({
        connection: String(f.redis),
        name: String(f.queue),
        concurrency: int('concurrency', f.concurrency, 1),
        engine: {
          device: String(f.device),
          precision: precisionFlag(f.precision),
          threads: int('threads', f.threads, 1),
          maxBatch: int('max-batch', f.maxBatch, 1),
          memoryLimit: memoryLimit === undefined ? undefined : memoryLimit * 1024 * 1024,
        },
        lockDurationMs: lock * 1000,
        maxLockDurationMs: num('max-lock-duration', f.maxLockDuration)! * 1000,
        stalledIntervalMs: stalled === undefined ? undefined : stalled * 1000,
        resultsDir: f.resultsDir === undefined ? undefined : String(f.resultsDir),
        inlineMaxBytes: int('inline-max-bytes', f.inlineMaxBytes, 0),
        rateLimit: rateLimit(f.rateLimit),
        modelsDir: f.modelsDir === undefined ? undefined : String(f.modelsDir),
        allowRemoteVerifiers: allowed,
        remoteVerifier,
        maxJobNfe: int('max-job-nfe', f.maxJobNfe, 1),
        log,
      });
      const drainMs = num('drain', f.drain)! * 1000;
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        log(`${sig}: no new jobs; waiting up to ${drainMs / 1000} s for the running ones`);
        void w.close({ deadlineMs: drainMs }).finally(() => process.exit(0));
        // Redis unreachable: BullMQ's close waits for it; the jobs' locks will lapse anyway.
        setTimeout(() => process.exit(0), drainMs + 10_000).unref();
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      await w.ready();
      log(`ready: queue '${f.queue}' on ${f.redis}, concurrency ${f.concurrency}, device ${f.device}`);
      await new Promise(() => undefined); // runs until a signal
    });

  // submit takes generate's flags (all but --out and --json, which it has its own of).
  const tmp = new Command();
  addGenerate(tmp);
  const generate = tmp.commands.find((c) => c.name() === 'generate')!;
  const submit = program
    .command('submit')
    .description('submit a search job to a queue: prints its id (--wait: waits and prints the report)')
    .option('--redis <url>', 'Redis URL', REDIS)
    .option('--queue <name>', 'queue name', QUEUE)
    .option('--key <key>', 'idempotency key: submitting the same key again gives the same job')
    .option('--attempts <n>', 'tries when a failure may be transient (bad input fails at once)', '3')
    .option('--expected-seconds <s>', "the job's expected length: sets its lock (default: the worker's measured rate)")
    .option('--wait', 'wait for the job and print its report (JSON)')
    .option('--timeout <s>', 'with --wait: give up after this long')
    .option(
      '--out <dir>',
      'with --wait: also write report.json, samples.npy, grid.png (latents.npy, video clip-<row>.gif) here',
    );
  // The --verifier-* settings are the worker's (a job carries verifier URLs, not how to call them).
  const own = (o: { attributeName(): string }) =>
    ['out', 'json'].includes(o.attributeName()) || /^verifier[A-Z]/.test(o.attributeName());
  for (const opt of generate.options) if (!own(opt)) submit.addOption(opt);
  submit
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search submit --queue q --model gmm2d --budget 500 --n 4\n' +
        '  $ diffusion-search submit --queue q --class Shirt --budget 500 --key shirt-1 --wait --out out/shirt',
    )
    .action(async (flags: Record<string, unknown>, cmd: Command) => {
      const file = readConfig(flags.config as string | undefined);
      checkConfigKeys(file, generate, flags.config as string);
      const workerOnly = Object.keys(file).filter((k) => /^verifier[A-Z]/.test(k));
      if (workerOnly.length)
        throw new DiffusionSearchError(
          `--config '${flags.config}': ${workerOnly.join(', ')}: how to call remote verifiers is the worker's ` +
            "setting (worker --verifier-*), not a job's; drop it here",
          'ARGUMENT',
        );
      const get = (key: string) => (cmd.getOptionValueSource(key) === 'cli' ? flags[key] : (file[key] ?? flags[key]));
      const options = collectOptions(get);
      options.eval = cmd.getOptionValueSource('eval') === 'cli' ? false : (file.eval as boolean | undefined);
      // The worker's device unless asked for (the generate default 'cpu' would pin every job to CPU workers).
      if (cmd.getOptionValueSource('device') !== 'cli' && file.device === undefined) delete options.device;
      await startup().probeRedis(String(flags.redis));
      const q = queueClient().createQueue({ connection: String(flags.redis), name: String(flags.queue) });
      try {
        await q.ready();
        const id = await q.submit(options, {
          key: flags.key === undefined ? undefined : String(flags.key),
          attempts: int('attempts', flags.attempts, 1),
          expectedSeconds: num('expected-seconds', flags.expectedSeconds),
        });
        if (!flags.wait) {
          process.stdout.write(id + '\n');
          return;
        }
        process.stderr.write(`job ${id}\n`);
        const timeout = num('timeout', flags.timeout);
        const r = await q.wait(id, { timeoutMs: timeout === undefined ? undefined : timeout * 1000 });
        if (flags.out !== undefined) {
          const out = String(flags.out);
          prepareOut(out);
          const latents = r.latents?.data ? { data: r.latents.data, shape: r.latents.shape } : null;
          const files = r.samples ? writeSampleFiles(out, { ...r, samples: r.samples, latents }) : undefined;
          fs.writeFileSync(path.join(out, 'report.json'), JSON.stringify({ ...r.report, files }, null, 2) + '\n');
        }
        process.stdout.write(JSON.stringify(r.report) + '\n');
      } finally {
        await q.close();
      }
    });

  program
    .command('jobs')
    .description("a queue's jobs by state")
    .option('--redis <url>', 'Redis URL', REDIS)
    .option('--queue <name>', 'queue name', QUEUE)
    .option('--json', 'print one JSON object')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffusion-search jobs --queue q\n' +
        '  $ diffusion-search jobs --redis redis://10.0.0.5:6379 --queue q --json',
    )
    .action(async (f: { redis: string; queue: string; json?: boolean }) => {
      await startup().probeRedis(f.redis);
      const q = queueClient().createQueue({ connection: f.redis, name: f.queue });
      try {
        await q.ready();
        const c = await q.counts();
        if (f.json) process.stdout.write(JSON.stringify(c) + '\n');
        else for (const [k, v] of Object.entries(c)) console.log(`${k.padEnd(12)}${v}`);
      } finally {
        await q.close();
      }
    });
}
