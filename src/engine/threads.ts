/**
 * The one place a process decides its threads: libtorch's and the kernels' intra-op threads
 * (setNumThreads, process-wide) and OpenMP's wait policy. libgomp reads OMP_WAIT_POLICY once,
 * when the addon loads (src/native.ts sets PASSIVE then unless the environment has a value), so a
 * policy asked for here takes effect only before the first call into the addon; later, or against
 * the user's own environment, the one in force is kept and reported.
 */
import { native } from '../native';

export type WaitPolicy = 'PASSIVE' | 'ACTIVE';

export interface ThreadSettings {
  /** Intra-op threads in force. */
  threads: number;
  /** OMP_WAIT_POLICY in force. */
  waitPolicy: string;
  /** Set when a requested wait policy could not be applied, and why. */
  note?: string;
}

let loaded = false;

export function configureThreads(o: { threads?: number; waitPolicy?: WaitPolicy } = {}): ThreadSettings {
  let note: string | undefined;
  const env = process.env.OMP_WAIT_POLICY;
  if (o.waitPolicy) {
    if (!env && !loaded) process.env.OMP_WAIT_POLICY = o.waitPolicy;
    else if ((env ?? '').toUpperCase() !== o.waitPolicy)
      note =
        `OMP_WAIT_POLICY stays ${env}: it was set before this engine (by the environment, or when the addon ` +
        'loaded) and libgomp reads it once';
  }
  const b = native(); // loads the addon (PASSIVE unless set) on first use
  loaded = true;
  if (o.threads !== undefined) b.setNumThreads(o.threads);
  return { threads: b.info().threads.intraOp, waitPolicy: process.env.OMP_WAIT_POLICY ?? 'PASSIVE', note };
}
