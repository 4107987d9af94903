/** What the queue's client and workers agree on: job data, progress, error encoding, keys. */
import { DiffusionSearchError, type ErrorCode } from '../errors';
import type { GenerateOptions } from '../request/types';

export const DEFAULT_PREFIX = 'bull';

/** A job's data: the generate options (JSON: verifiers by name, file or URL) and when it was submitted. */
export interface JobData {
  options: GenerateOptions;
  submittedAt: number;
  /** The submitter's estimate of the job's length, which sets its lock (see ./worker). */
  expectedSeconds?: number;
}

/** What `job.updateProgress` carries (throttled to one update per progressIntervalMs). */
export interface JobProgress {
  /** NFE spent so far over every search of the job, and their total budget. */
  nfe: number;
  budget: number;
  /** Best reward seen so far by any search of the job. */
  best: number;
  /** The search that reported, and the job's number of searches. */
  sample: number;
  samples: number;
  /** Seconds since the worker took the job. */
  seconds: number;
  worker: string;
}

/**
 * Failures that a retry cannot fix (bad input, a request the device cannot hold, a cancellation):
 * the job fails at once, with its code. Anything else — a native failure, a verifier service that
 * is down, the engine closing, Redis errors — is retried with backoff.
 */
export const UNRECOVERABLE: ReadonlySet<string> = new Set<ErrorCode>([
  'ARGUMENT',
  'ARITY',
  'SHAPE',
  'DEVICE',
  'MODEL_LOAD',
  'MODEL_CARD',
  'BUDGET',
  'OUT_OF_MEMORY',
  'ABORTED',
]);

/** failedReason is `[CODE] message`. */
export function encodeError(code: string, message: string): string {
  return `[${code}] ${message}`;
}

export function decodeError(reason: string | undefined): DiffusionSearchError {
  const m = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(reason ?? '');
  return m
    ? new DiffusionSearchError(m[2], m[1] as ErrorCode)
    : new DiffusionSearchError(reason || 'the job failed', 'NATIVE');
}

/** Redis names the queue adds next to BullMQ's own. */
export const cancelKey = (prefix: string, queue: string, id: string) => `${prefix}:${queue}:ds:cancel:${id}`;
export const cancelChannel = (prefix: string, queue: string) => `${prefix}:${queue}:ds:cancel`;
