/** Search jobs on BullMQ and Redis: clients submit, workers on any machines run them in their engines. */
export {
  createQueue,
  DiffusionQueue,
  checkOptions,
  type QueueOptions,
  type SubmitOptions,
  type JobState,
} from './client';
export { createWorker, DiffusionWorker, type WorkerOptions } from './worker';
export { parseRedisUrl, type RedisConnection } from './connection';
export { storeResult, loadResult, DEFAULT_INLINE_MAX_BYTES, type StoredResult, type QueueResult } from './results';
export { decodeError, UNRECOVERABLE, type JobData, type JobProgress } from './common';
export { JOB_NAME, JOB_DATA_KEYS, JOB_DEFAULTS, checkJobData, sameRequest } from './protocol';
export { jobSchema, resultSchema } from './schemas';
