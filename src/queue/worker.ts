/**
 * The working side: `createWorker({ connection, name, engine, concurrency })` takes jobs of the
 * queue into one engine, so the jobs it runs at once are batched together like serve's requests.
 *
 * Long jobs: the search runs on native threads, so the event loop stays free while it runs and
 * the worker renews the job's lock every half lock however long the job is (it measures its event
 * loop's delay per job: `report.queue.loop_delay_max_ms`). A job's lock is set from its expected
 * length — the submitter's `expectedSeconds`, else budget × n × this worker's measured seconds per
 * NFE of the model: lock = clamp(expected / 20, lockDurationMs, maxLockDurationMs). The lock is how
 * long a dead worker's job waits before another takes it (≤ lock + stalledInterval), so a crash
 * delays a job by at most ~5 % of its length (or lockDurationMs), while a long job tolerates
 * longer stalls of its worker (a slow disk, swapping, a Redis failover) without running twice.
 * BullMQ's own renewal (one lock duration for every job of a worker) is off for this.
 *
 * Faults: a worker that dies mid-job stops renewing; another worker finds the job stalled and
 * runs it again from the start — the noise is a function of the seed and ids, so it returns
 * the same samples. Bad input fails once (UnrecoverableError, the error's code kept), other
 * failures are retried with the job's backoff. Admission: a job whose estimated memory exceeds
 * the engine's ceiling fails OUT_OF_MEMORY; one that does not fit next to the jobs running is
 * handed back to the queue (another worker, or this one later, takes it).
 */
import os from 'node:os';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import Redis from 'ioredis';
import { DiffusionSearchError } from '../errors';
import { createEngine, type Engine, type EngineOptions } from '../engine/engine';
import { NoRoomError } from '../engine/admission';
import { resolveModel } from '../models/shipped';
import { createPolicy, type RequestPolicy, withModelNames } from '../request/policy';
import { asOptions, resolveRequest } from '../request/resolve';
import type { GenerateOptions, GenerateResult, ResolvedRequest } from '../request/types';
import type { HttpVerifierOptions } from '../verifiers/http';
import {
  cancelChannel,
  cancelKey,
  DEFAULT_PREFIX,
  encodeError,
  UNRECOVERABLE,
  type JobData,
  type JobProgress,
} from './common';
import { toConnection, type RedisConnection } from './connection';
import { checkJobData, JOB_DEFAULTS, JOB_NAME } from './protocol';
import { storeResult, type StoredResult } from './results';

export interface WorkerOptions {
  connection: string | RedisConnection;
  name: string;
  prefix?: string;
  /** An engine to use (the caller closes it), or the options of one the worker creates and closes. */
  engine?: Engine | EngineOptions;
  /** Jobs run at once in this worker's engine (default 1). */
  concurrency?: number;
  /** The shortest lock of a running job, renewed every half of it (default 30 s). */
  lockDurationMs?: number;
  /** Longest lock of a long job (default 10 min; see the top of this file). */
  maxLockDurationMs?: number;
  /** How often workers look for jobs whose lock expired (default: lockDurationMs). */
  stalledIntervalMs?: number;
  /** Times a job may be found stalled (its worker died) and run again (default 2). */
  maxStalledCount?: number;
  /** Larger results go here (see ./results); without it every result stays in Redis. */
  resultsDir?: string;
  /** Results up to this size (samples + latents) stay in Redis (default 1 MiB). */
  inlineMaxBytes?: number;
  /** At most `max` jobs started per `durationMs` by all workers of the queue together (BullMQ's limiter). */
  rateLimit?: { max: number; durationMs: number };
  /** Models jobs may name besides the shipped ones: .pt files in this directory (as serve). */
  modelsDir?: string;
  /** Origins (scheme://host[:port]) whose http(s) verifier URLs jobs may name; ['*'] or true: any (default none). */
  allowRemoteVerifiers?: boolean | readonly string[];
  /** Timeout, retries, backoff, rows, concurrency and headers of the remote verifiers jobs name. */
  remoteVerifier?: HttpVerifierOptions;
  /** Most NFE one job may ask for (n × budget × prompts; default 10,000,000: queued jobs are long by design). */
  maxJobNfe?: number;
  /** Least time between two progress updates of a job (default 250 ms). */
  progressIntervalMs?: number;
  /** A name for logs and reports (default host:pid). */
  id?: string;
  /** Called when a job starts and ends (logs). */
  log?: (line: string) => void;
}

/** A job's expected length and lock, and the model's measured seconds per NFE. */
interface Plan {
  file: string;
  measured: number | undefined;
  expected: number | null;
  lockMs: number;
}

export class DiffusionWorker {
  readonly id: string;
  readonly engine: Engine;
  readonly worker: Worker<JobData, StoredResult>;
  private readonly ownsEngine: boolean;
  private readonly subscriber: Redis;
  private readonly redis: Redis;
  private readonly policy: RequestPolicy;
  private readonly prefix: string;
  private readonly lockMin: number;
  private readonly lockMax: number;
  /** Measured seconds per NFE, per model file (EWMA over this worker's finished jobs). */
  private readonly perNfe = new Map<string, number>();
  private closing: Promise<void> | null = null;
  /** Running jobs' controllers (a shutdown past its deadline stops them). */
  private readonly controllers = new Set<AbortController>();
  /** Jobs finished (ok / failed) by this worker, for tests and logs. */
  readonly stats = { started: 0, completed: 0, failed: 0, handedBack: 0 };

  constructor(private readonly o: WorkerOptions) {
    const connection = toConnection(o.connection);
    this.prefix = o.prefix ?? DEFAULT_PREFIX;
    this.id = o.id ?? `${os.hostname()}:${process.pid}`;
    const concurrency = o.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new DiffusionSearchError(`concurrency must be a positive integer, got ${o.concurrency}`, 'ARGUMENT');
    const lockDuration = o.lockDurationMs ?? 30_000;
    if (!(lockDuration >= 100))
      throw new DiffusionSearchError(`lockDurationMs must be at least 100, got ${o.lockDurationMs}`, 'ARGUMENT');
    this.lockMin = lockDuration;
    this.lockMax = Math.max(lockDuration, o.maxLockDurationMs ?? 600_000);
    if (o.rateLimit && !(Number.isInteger(o.rateLimit.max) && o.rateLimit.max >= 1 && o.rateLimit.durationMs > 0))
      throw new DiffusionSearchError('rateLimit needs a positive integer max and a positive durationMs', 'ARGUMENT');
    this.ownsEngine = !(o.engine && typeof (o.engine as Engine).generate === 'function');
    // The engine runs what BullMQ hands it: never more than `concurrency`, so it never answers BUSY.
    this.engine = this.ownsEngine
      ? createEngine({ ...(o.engine as EngineOptions), maxActive: concurrency, maxQueue: concurrency })
      : (o.engine as Engine);
    if (o.remoteVerifier) this.engine.models.remoteVerifier = o.remoteVerifier;
    this.policy = createPolicy({
      modelsDir: o.modelsDir,
      allowRemoteVerifiers: o.allowRemoteVerifiers,
      maxRequestNfe: o.maxJobNfe ?? 10_000_000,
      who: 'worker',
    });
    this.redis = new Redis({ ...connection, maxRetriesPerRequest: null } as never);
    this.subscriber = new Redis({ ...connection, maxRetriesPerRequest: null } as never);
    this.subscriber.on('message', (_ch: string, id: string) => this.worker.cancelJob(id, 'cancelled'));
    void this.subscriber.subscribe(cancelChannel(this.prefix, o.name)).catch(() => undefined);
    this.redis.on('error', () => undefined);
    this.subscriber.on('error', () => undefined);
    this.worker = new Worker<JobData, StoredResult>(o.name, (job, token, signal) => this.process(job, token, signal), {
      connection: { ...connection, maxRetriesPerRequest: null },
      prefix: this.prefix,
      concurrency,
      lockDuration,
      // Locks are renewed per job, for its own duration (renewLock).
      skipLockRenewal: true,
      stalledInterval: o.stalledIntervalMs ?? lockDuration,
      maxStalledCount: o.maxStalledCount ?? 2,
      limiter: o.rateLimit ? { max: o.rateLimit.max, duration: o.rateLimit.durationMs } : undefined,
      // For jobs that carry no removal of their own (BullMQ would keep them forever).
      removeOnComplete: { age: JOB_DEFAULTS.keepSeconds },
      removeOnFail: { age: JOB_DEFAULTS.keepSeconds },
      autorun: true,
    });
    this.worker.on('error', (e) => o.log?.(`worker error: ${(e as Error).message}`));
  }

  /** Resolves when the worker is connected and taking jobs. */
  async ready(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  private async process(
    job: Job<JobData, StoredResult>,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<StoredResult> {
    const started = Date.now();
    this.stats.started++;
    this.o.log?.(`start ${job.id} attempt ${job.attemptsMade + 1}`);
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    // From the start: loading the model for the estimate may take a while on a first job.
    const lock = this.renewLock(job, token);
    try {
      if (await this.redis.get(cancelKey(this.prefix, this.o.name, job.id!)))
        throw new DiffusionSearchError('cancelled before it started', 'ABORTED');
      const request = await this.checkJob(job);
      await this.admit(request);
      const plan = this.plan(job, request);
      lock.set(plan.lockMs);
      const result = await this.run(job, asOptions(request), signal, started);
      lag.disable();
      return this.finish(job, result, plan, started, lag);
    } catch (e) {
      return await this.failed(e, job, token, signal);
    } finally {
      lock.stop();
      lag.disable();
    }
  }

  /** The job's expected length and its lock (see the top of this file). */
  private plan(job: Job<JobData, StoredResult>, request: ResolvedRequest): Plan {
    const { file } = resolveModel(request.model);
    const measured = this.perNfe.get(file);
    const hint = job.data.expectedSeconds;
    const nfe = request.budget * request.searches;
    const expected = typeof hint === 'number' && hint > 0 ? hint : measured !== undefined ? measured * nfe : null;
    const wanted = expected === null ? 0 : (expected * 1000) / 20;
    return { file, measured, expected, lockMs: Math.round(Math.min(this.lockMax, Math.max(this.lockMin, wanted))) };
  }

  /** Runs the job in the engine, its progress throttled into the job; ABORTED when it was cancelled. */
  private async run(
    job: Job<JobData, StoredResult>,
    options: GenerateOptions,
    signal: AbortSignal | undefined,
    started: number,
  ): Promise<GenerateResult> {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) ctl.abort(signal.reason); // cancelled while the model loaded
    this.controllers.add(ctl);
    let best = -Infinity;
    let last = 0;
    let latest = null as JobProgress | null;
    const every = this.o.progressIntervalMs ?? 250;
    const seconds = () => (Date.now() - started) / 1000;
    try {
      const result = await this.engine.generate(options, {
        signal: ctl.signal,
        wait: false,
        onProgress: (p) => {
          if (Number.isFinite(p.best)) best = Math.max(best, p.best);
          const { totalNfe: nfe, totalBudget: budget, sample, samples } = p;
          latest = { nfe, budget, best, sample, samples, seconds: seconds(), worker: this.id };
          const now = performance.now();
          if (now - last < every) return;
          last = now;
          job.updateProgress(latest as never).catch(() => undefined);
        },
      });
      if (ctl.signal.aborted || !result.complete) throw new DiffusionSearchError('cancelled', 'ABORTED');
      // Throttling may have dropped the last updates: a finished job shows what it really used.
      const final = finalProgress(latest, result, best, seconds(), this.id);
      await job.updateProgress(final as never).catch(() => undefined);
      return result;
    } finally {
      this.controllers.delete(ctl);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The measured rate updated, the report's queue entry added, the result stored (./results). */
  private finish(
    job: Job<JobData, StoredResult>,
    result: GenerateResult,
    plan: Plan,
    started: number,
    lag: IntervalHistogram,
  ): StoredResult {
    const id = job.id!;
    const used = result.report.nfe_used as number;
    const wall = result.report.wall_seconds as number;
    const m = plan.measured;
    if (used > 0) this.perNfe.set(plan.file, m === undefined ? wall / used : 0.7 * m + (0.3 * wall) / used);
    result.report.queue = {
      job: id,
      queue: this.o.name,
      worker: this.id,
      attempt: job.attemptsMade + 1,
      queued_ms: (job.processedOn ?? started) - job.timestamp,
      run_ms: Date.now() - started,
      expected_seconds: plan.expected,
      lock_ms: plan.lockMs,
      loop_delay_max_ms: lag.max / 1e6,
      loop_delay_p99_ms: lag.percentile(99) / 1e6,
    };
    const { resultsDir, inlineMaxBytes } = this.o;
    // Clients see model names, never this worker's file system (as serve's answers).
    const named = { ...result, report: withModelNames(result.report, this.policy) };
    const stored = storeResult(named, { id, queue: this.o.name, resultsDir, inlineMaxBytes });
    this.stats.completed++;
    const where = `${stored.where}; loop delay max ${(lag.max / 1e6).toFixed(1)} ms`;
    this.o.log?.(`done ${id} in ${((Date.now() - started) / 1000).toFixed(2)} s (${where})`);
    return stored;
  }

  /**
   * Checks the job's estimated memory against the engine's: above its limit it fails
   * (OUT_OF_MEMORY). Whether it fits beside the requests running there now is the engine's
   * admission's decision, taken when the job runs (`wait: false`): see `handBack`.
   */
  private async admit(request: ResolvedRequest): Promise<void> {
    const bytes = await this.engine.estimate(request);
    const { memoryLimitBytes: limit } = this.engine.metrics();
    if (bytes > limit)
      throw new DiffusionSearchError(
        `this job needs about ${mib(bytes)}, above this worker's memory limit of ${mib(limit)}: ` +
          'lower n, budget or keep, or run it on a larger worker',
        'OUT_OF_MEMORY',
      );
  }

  /**
   * A job that found no place beside those running here goes back to the queue for another worker
   * or later; the engine's admission decided and reserved in one step, so two jobs taken at once
   * cannot both be let in on the same free memory.
   */
  private async handBack(job: Job<JobData, StoredResult>, e: NoRoomError, token: string | undefined): Promise<never> {
    this.stats.handedBack++;
    this.o.log?.(`hand back ${job.id}: ${e.message}`);
    await job.moveToDelayed(Date.now() + 500, token);
    throw new DelayedError();
  }

  /**
   * A job that did not finish: handed back (the worker is shutting down), or failed with its code
   * (unrecoverable ones not retried).
   */
  private async failed(
    e: unknown,
    job: Job<JobData, StoredResult>,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<never> {
    if (e instanceof DelayedError) throw e;
    if (e instanceof NoRoomError) return this.handBack(job, e, token);
    if (this.closing && !signal?.aborted && token) {
      // Stopped by this worker's shutdown, not by the job: back to the queue, no attempt spent.
      this.o.log?.(`hand back ${job.id}: the worker is shutting down`);
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    this.stats.failed++;
    const code = signal?.aborted ? 'ABORTED' : e instanceof DiffusionSearchError ? e.code : 'NATIVE';
    const message = signal?.aborted ? 'cancelled' : e instanceof Error ? e.message : String(e);
    this.o.log?.(`fail ${job.id}: [${code}] ${message}`);
    if (UNRECOVERABLE.has(code)) throw new UnrecoverableError(encodeError(code, message));
    throw new Error(encodeError(code, message));
  }

  /**
   * Holds the job's lock for `lockMs`, renewed every lockMs/2 (at once too: BullMQ took it for
   * lockDurationMs). A renewal that fails (the lock lost: another worker took the job) is logged.
   */
  private renewLock(
    job: Job<JobData, StoredResult>,
    token: string | undefined,
  ): { set(lockMs: number): void; stop(): void } {
    let lockMs = this.lockMin;
    let timer: NodeJS.Timeout | undefined;
    const renew = () =>
      token &&
      job.extendLock(token, lockMs).then(
        (ok) => void (!ok && this.o.log?.(`lost the lock of ${job.id}`)),
        (e: Error) => this.o.log?.(`lock renewal of ${job.id} failed: ${e.message}`),
      );
    const set = (ms: number) => {
      clearInterval(timer);
      if (ms !== lockMs) {
        lockMs = ms;
        void renew();
      }
      timer = setInterval(renew, lockMs / 2);
    };
    set(lockMs);
    return { set, stop: () => clearInterval(timer) };
  }

  /**
   * The job's retry options defaulted (./protocol), then its name and data checked and its options
   * resolved under this worker's policy (as serve checks a request).
   */
  private async checkJob(job: Job<JobData, StoredResult>): Promise<ResolvedRequest> {
    await this.defaultRetries(job);
    if (job.name !== JOB_NAME)
      throw new DiffusionSearchError(`a job of this queue is named '${JOB_NAME}', got '${job.name}'`, 'ARGUMENT');
    return resolveRequest(checkJobData(job.data).options, this.policy);
  }

  /**
   * A job added without attempts or backoff (a raw client's) gets the queue's: set in memory, where
   * BullMQ decides a retry, and in Redis, so whoever reads the job sees what applies.
   */
  private async defaultRetries(job: Job<JobData, StoredResult>): Promise<void> {
    // BullMQ reads a missing attempts as 0 (one try).
    if (job.opts.attempts && job.opts.backoff !== undefined) return;
    job.opts.attempts ||= JOB_DEFAULTS.attempts;
    job.opts.backoff ??= { ...JOB_DEFAULTS.backoff };
    const key = `${this.prefix}:${this.o.name}:${job.id}`;
    // Only the two fields: the stored JSON keeps BullMQ's own (short) names for the rest.
    let raw: Record<string, unknown> = {};
    try {
      raw = JSON.parse((await this.redis.hget(key, 'opts')) || '{}');
    } catch {
      // unreadable: BullMQ read it as no options too
    }
    const opts = { ...raw, attempts: job.opts.attempts, backoff: job.opts.backoff };
    await this.redis.hset(key, 'opts', JSON.stringify(opts)).catch(() => undefined);
  }

  /**
   * Stops taking jobs and waits for the running ones up to `deadlineMs` (default: until they
   * end). Jobs still running then are stopped (within a step) and handed back to the queue,
   * without spending an attempt, for another worker. (A process that exits instead leaves them to
   * their locks: another worker takes them once the lock expires, as after a crash.)
   */
  close(o: { deadlineMs?: number } = {}): Promise<void> {
    this.closing ??= (async () => {
      const closed = this.worker.close();
      if (o.deadlineMs !== undefined) {
        await Promise.race([closed, new Promise((r) => setTimeout(r, o.deadlineMs).unref())]);
        this.controllers.forEach((c) => c.abort(new DiffusionSearchError('the worker is shutting down', 'ABORTED')));
      }
      await closed;
      await Promise.all([this.subscriber.quit().catch(() => undefined), this.redis.quit().catch(() => undefined)]);
      if (this.ownsEngine) await this.engine.close();
    })();
    return this.closing;
  }
}

/** The progress of a finished job: every NFE it used, its best reward. */
function finalProgress(
  latest: JobProgress | null,
  r: GenerateResult,
  best: number,
  seconds: number,
  worker: string,
): JobProgress {
  const samples = r.results.length;
  const budget = latest?.budget ?? r.results.reduce((s, x) => s + x.budget, 0);
  const top = Math.max(best, ...r.rewards);
  return { nfe: r.report.nfe_used as number, budget, best: top, sample: samples - 1, samples, seconds, worker };
}

const mib = (b: number) => (Number.isFinite(b) ? `${(b / 1024 / 1024).toFixed(1)} MiB` : 'unlimited');

export function createWorker(options: WorkerOptions): DiffusionWorker {
  return new DiffusionWorker(options);
}
