/**
 * Verifiers score final samples (higher is better). Anything with `score` is a verifier; the
 * classes here wrap TorchScript modules, combine verifiers, or adapt plain async functions.
 */
import { DiffusionSearchError } from '../errors';
import type { NativeStream, NativeTensor } from '../native';

type Tensor = NativeTensor;

export interface ScoreExtras {
  /** x̂0 predicted at σ ≈ 0.4 on the way to each sample (for the self-supervised verifier). */
  x0Mid?: Tensor;
  stream?: NativeStream;
  /** The search's signal: verifiers that wait on something (a remote grader) stop when it aborts. */
  signal?: AbortSignal;
  /** The prompt of each sample, for prompt-aware verifiers (null or absent for class conditions). */
  prompts?: string[] | null;
  /**
   * The condition tensors of each sample (named as the denoiser's card names them), for verifiers with
   * needsCondition.
   */
  condition?: Record<string, Tensor>;
}

export interface Verifier {
  readonly name: string;
  score(x0: Tensor, cond: ArrayLike<number>, extras?: ScoreExtras): Promise<Float32Array>;
  /** True when it needs extras.x0Mid. */
  readonly needsMidPrediction?: boolean;
  /** True when it needs extras.condition (a verifier that reads the prompt's embedding). */
  readonly needsCondition?: boolean;
  /** A copy with fresh per-search state (a rank ensemble's calibration); SearchRun calls it. */
  forSearch?(): Verifier;
}

/** Rejects NaN and ±∞ scores with the verifier's name, unless asked to treat them as −∞. */
export function checkScores(name: string, scores: Float32Array, nanAsNegInf = false): Float32Array {
  for (let i = 0; i < scores.length; i++) {
    if (Number.isFinite(scores[i])) continue;
    if (nanAsNegInf) scores[i] = -Infinity;
    else
      throw new DiffusionSearchError(
        `verifier '${name}' returned ${scores[i]} for sample ${i}; fix the verifier or pass nanAsNegInf to rank ` +
          'such samples last',
        'VERIFIER',
      );
  }
  return scores;
}

/**
 * Any `(x0, cond, extras) => Promise<Float32Array | number[]>` as a verifier; `extras.prompts` holds
 * each sample's prompt (text-conditioned models), and with `needsCondition` `extras.condition` the
 * condition tensors.
 */
export class FunctionVerifier implements Verifier {
  constructor(
    readonly name: string,
    private readonly fn: (x0: Tensor, cond: ArrayLike<number>, extras: ScoreExtras) => Promise<ArrayLike<number>>,
    readonly needsCondition = false,
  ) {}
  async score(x0: Tensor, cond: ArrayLike<number>, extras: ScoreExtras = {}): Promise<Float32Array> {
    const s = Float32Array.from(await this.fn(x0, cond, extras));
    if (s.length !== x0.shape[0])
      throw new DiffusionSearchError(
        `verifier '${this.name}' returned ${s.length} scores for ${x0.shape[0]} samples`,
        'SHAPE',
      );
    return s;
  }
}

/**
 * `v.score(...)` as a search calls it: a failure that is not already a DiffusionSearchError (a
 * plain Error from a JS verifier) becomes VERIFIER, naming the verifier, with the original as its
 * cause; and the search's signal ends the wait at once (ABORTED), even when the verifier ignores
 * the signal and never answers — its late answer or failure is dropped.
 */
export async function scoreGuarded(
  v: Verifier,
  x0: Tensor,
  cond: ArrayLike<number>,
  extras: ScoreExtras,
): Promise<ArrayLike<number>> {
  const signal = extras.signal;
  const cancelled = (cause: unknown) =>
    new DiffusionSearchError(`verifier '${v.name}': cancelled`, 'ABORTED', { cause });
  if (signal?.aborted) throw cancelled(signal.reason);
  let onAbort: (() => void) | undefined;
  const work = (async () => v.score(x0, cond, extras))();
  try {
    if (!signal) return await work;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(cancelled(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return await Promise.race([work, aborted]);
  } catch (e) {
    if (e instanceof DiffusionSearchError) throw e;
    if (signal?.aborted) throw cancelled(e);
    throw new DiffusionSearchError(
      `verifier '${v.name}' failed: ${e instanceof Error ? e.message : String(e)}`,
      'VERIFIER',
      { cause: e },
    );
  } finally {
    if (onAbort) signal!.removeEventListener('abort', onAbort);
    work.catch(() => undefined); // a verifier left behind may fail later: not an unhandled rejection
  }
}
