/**
 * The submitting side: `createQueue({ connection, name })`. Submits generate options as jobs,
 * reads their state, progress and results, and cancels them. Any number of clients and workers
 * on any machines share a queue through Redis.
 */
import { EventEmitter } from 'node:events';
import { Queue, QueueEvents, type Job } from 'bullmq';
import Redis from 'ioredis';
import { DiffusionSearchError } from '../errors';
import type { GenerateOptions } from '../request/types';
import { cancelChannel, cancelKey, decodeError, DEFAULT_PREFIX, type JobData, type JobProgress } from './common';
import { resolveRequest } from '../request/resolve';
import { toConnection, type RedisConnection } from './connection';
import { JOB_DEFAULTS, JOB_NAME, sameRequest } from './protocol';
import { loadResult, type QueueResult, type StoredResult } from './results';

export interface QueueOptions {
  /** `redis://host:port[/db]` or ioredis options. */
  connection: string | RedisConnection;
  /** The queue's name (workers of the same name take its jobs). */
  name: string;
  /** Redis key prefix (default 'bull', BullMQ's). */
  prefix?: string;
  /** Tries of a job whose failure may be transient (default 3); bad input fails at the first. */
  attempts?: number;
  /** First retry's delay in ms, doubling after (default 2000). */
  backoffMs?: number;
  /** How long finished jobs and their results stay in Redis, in seconds (default 7 days). */
  keepSeconds?: number;
}

export interface SubmitOptions {
  /** Idempotency key: submitting the same key again returns the same job (its id is the key). */
  key?: string;
  attempts?: number;
  /** BullMQ priority: 1 is the highest; jobs without one come first. */
  priority?: number;
  /** How long the job should take, in seconds: sets its lock (else the worker's measured rate does). */
  expectedSeconds?: number;
}

export type JobState =
  | 'waiting'
  | 'active'
  | 'completed'
  | 'failed'
  | 'delayed'
  | 'prioritized'
  | 'waiting-children'
  | 'unknown';

export class DiffusionQueue extends EventEmitter {
  readonly name: string;
  readonly prefix: string;
  readonly queue: Queue<JobData, StoredResult>;
  private readonly connection: RedisConnection;
  private events: QueueEvents | null = null;
  private publisher: Redis | null = null;
  private readonly defaults: { attempts: number; backoffMs: number; keepSeconds: number };

  constructor(o: QueueOptions) {
    super();
    if (!o.name || typeof o.name !== 'string') throw new DiffusionSearchError('a queue needs a name', 'ARGUMENT');
    this.name = o.name;
    this.prefix = o.prefix ?? DEFAULT_PREFIX;
    this.connection = toConnection(o.connection);
    const d = JOB_DEFAULTS;
    this.defaults = {
      attempts: o.attempts ?? d.attempts,
      backoffMs: o.backoffMs ?? d.backoff.delay,
      keepSeconds: o.keepSeconds ?? d.keepSeconds,
    };
    this.queue = new Queue<JobData, StoredResult>(this.name, {
      connection: { ...this.connection },
      prefix: this.prefix,
    });
    this.queue.on('error', (e) => this.listenerCount('error') && this.emit('error', e));
  }

  /** Resolves once Redis answers; fails after `timeoutMs` (default 10 s) naming the address. */
  async ready(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new DiffusionSearchError(
              `cannot reach Redis at ${this.connection.host}:${this.connection.port} within ${timeoutMs / 1000} s`,
              'NATIVE',
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.queue.waitUntilReady(), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Adds a job and returns its id. With `key`, a second submission of the same key returns the
   * first one's id and adds nothing (it must carry the same options: ARGUMENT otherwise).
   */
  async submit(options: GenerateOptions, s: SubmitOptions = {}): Promise<string> {
    const clean = checkOptions(options);
    if (
      s.key !== undefined &&
      !(typeof s.key === 'string' && /^[A-Za-z0-9._~-]{1,200}$/.test(s.key) && !/^\d+$/.test(s.key))
    )
      throw new DiffusionSearchError(
        `the idempotency key must be 1-200 of A-Z a-z 0-9 . _ ~ - and not only digits, got '${s.key}'`,
        'ARGUMENT',
      );
    if (s.expectedSeconds !== undefined && !(s.expectedSeconds > 0 && Number.isFinite(s.expectedSeconds)))
      throw new DiffusionSearchError(`expectedSeconds must be a positive number, got ${s.expectedSeconds}`, 'ARGUMENT');
    const attempts = s.attempts ?? this.defaults.attempts;
    if (!Number.isInteger(attempts) || attempts < 1)
      throw new DiffusionSearchError(`attempts must be a positive integer, got ${attempts}`, 'ARGUMENT');
    const job = await this.queue.add(
      JOB_NAME,
      {
        options: clean,
        submittedAt: Date.now(),
        ...(s.expectedSeconds !== undefined ? { expectedSeconds: s.expectedSeconds } : {}),
      },
      {
        jobId: s.key,
        attempts,
        backoff: { type: 'exponential', delay: this.defaults.backoffMs },
        priority: s.priority,
        removeOnComplete: { age: this.defaults.keepSeconds },
        removeOnFail: { age: this.defaults.keepSeconds },
      },
    );
    // BullMQ adds nothing for a jobId it has, but answers with the data given: read the stored job.
    const stored = s.key === undefined ? job : await this.job(job.id!);
    // Compared resolved: another client (another language, key order, defaults spelled out)
    // asking for the same run is the same job.
    if (s.key !== undefined && stored && !sameRequest(stored.data?.options, clean))
      throw new DiffusionSearchError(
        `key '${s.key}' was already submitted with other options (job ${job.id}): use another key, or the same options`,
        'ARGUMENT',
      );
    return job.id!;
  }

  private async job(id: string): Promise<Job<JobData, StoredResult> | undefined> {
    return (await this.queue.getJob(id)) ?? undefined;
  }

  async state(id: string): Promise<JobState> {
    return ((await this.queue.getJobState(id)) as JobState) ?? 'unknown';
  }

  /** The job's last progress (null before its first, or when there is no such job). */
  async progress(id: string): Promise<JobProgress | null> {
    const p = (await this.job(id))?.progress;
    return p && typeof p === 'object' ? (p as unknown as JobProgress) : null;
  }

  /**
   * Progress, completion and failure events of every job of the queue:
   * on('progress', (id, p)), on('completed', (id)), on('failed', (id, error)).
   */
  async listen(): Promise<QueueEvents> {
    if (!this.events) {
      const ev = new QueueEvents(this.name, { connection: { ...this.connection }, prefix: this.prefix });
      ev.on('progress', ({ jobId, data }) => this.emit('progress', jobId, data as unknown as JobProgress));
      ev.on('completed', ({ jobId }) => this.emit('completed', jobId));
      ev.on('failed', ({ jobId, failedReason }) => this.emit('failed', jobId, decodeError(failedReason)));
      ev.on('error', (e) => this.listenerCount('error') && this.emit('error', e));
      this.events = ev;
      await ev.waitUntilReady();
    }
    return this.events;
  }

  /**
   * The result of a completed job; null while it is not finished; throws the job's error
   * (DiffusionSearchError with its code) when it failed, and ARGUMENT when there is no such job.
   */
  async result(id: string): Promise<QueueResult | null> {
    const job = await this.job(id);
    if (!job)
      throw new DiffusionSearchError(
        `no job '${id}' in queue '${this.name}' (finished jobs are kept ${this.defaults.keepSeconds} s)`,
        'ARGUMENT',
      );
    const state = await job.getState();
    if (state === 'failed') throw decodeError(job.failedReason);
    if (state !== 'completed') return null;
    return loadResult(id, job.returnvalue);
  }

  /** Waits for the job to finish and returns its result (throws its error if it failed). */
  async wait(id: string, o: { timeoutMs?: number } = {}): Promise<QueueResult> {
    const events = await this.listen();
    const job = await this.job(id);
    if (!job) throw new DiffusionSearchError(`no job '${id}' in queue '${this.name}'`, 'ARGUMENT');
    try {
      await job.waitUntilFinished(events, o.timeoutMs);
    } catch (e) {
      const state = await job.getState().catch(() => 'unknown');
      if (state !== 'failed')
        throw e instanceof DiffusionSearchError
          ? e
          : new DiffusionSearchError(`waiting for job ${id}: ${(e as Error).message}`, 'NATIVE', { cause: e });
    }
    const r = await this.result(id);
    if (!r) throw new DiffusionSearchError(`job ${id} finished but has no result`, 'NATIVE');
    return r;
  }

  /**
   * Cancels a job: a waiting or delayed one is removed ('removed'); a running one is stopped
   * within a step by its worker and fails with ABORTED, without retries ('cancelling'); a
   * finished one is left as it is ('finished'). 'unknown': no such job.
   */
  async cancel(id: string): Promise<'removed' | 'cancelling' | 'finished' | 'unknown'> {
    const job = await this.job(id);
    if (!job) return 'unknown';
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return 'finished';
    this.publisher ??= new Redis({ ...this.connection, lazyConnect: false } as never);
    // The mark first: a worker taking the job from now on sees it; then tell the one running it.
    await this.publisher.set(cancelKey(this.prefix, this.name, id), '1', 'EX', this.defaults.keepSeconds);
    if (state !== 'active') {
      try {
        await job.remove();
        return 'removed';
      } catch {
        // taken by a worker meanwhile: it will see the mark
      }
    }
    await this.publisher.publish(cancelChannel(this.prefix, this.name), id);
    return 'cancelling';
  }

  /** Jobs by state. */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
  }

  async close(): Promise<void> {
    await Promise.all([this.queue.close(), this.events?.close(), this.publisher?.quit().catch(() => undefined)]);
  }
}

/** Only JSON options a worker can run (verifiers by name, file or URL, not objects). */
export function checkOptions(o: GenerateOptions): GenerateOptions {
  if (typeof o !== 'object' || o === null || Array.isArray(o))
    throw new DiffusionSearchError('a job needs an object of generate options', 'ARGUMENT');
  if (o.verifier?.some((v) => typeof v !== 'string'))
    throw new DiffusionSearchError(
      'a job names its verifiers (names, files or URLs); Verifier objects stay in their process',
      'ARGUMENT',
    );
  // Refused here, at once, rather than as a failed job; the worker checks again under its policy.
  resolveRequest(o);
  return JSON.parse(JSON.stringify(o)) as GenerateOptions;
}

export function createQueue(options: QueueOptions): DiffusionQueue {
  return new DiffusionQueue(options);
}
