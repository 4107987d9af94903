/**
 * Diversity of a request's returned samples, all together and per search (its kept top-k), in the
 * eval model's feature space where the request is judged by it, else in the samples' own
 * coordinates (gmm2d, a user's model). See src/eval/diversity.
 */
import { type Diversity, diversityOf, meanPairwiseCosineDistance } from '../eval/diversity';
import type { Evaluator } from '../eval/metrics';
import { checkSampleShape } from '../verifiers/torchscript';

export interface ReportDiversity {
  /** Of every returned sample. */
  all: Diversity | null;
  /** Of each search's kept samples, in search order. */
  perSearch: Array<Diversity | null>;
}

/** `evaluator`: the eval model when the request is judged by it (and its samples fit it), else null. */
export async function reportDiversity(
  samples: Float32Array,
  shape: number[],
  keptPerSearch: number[],
  evaluator: Evaluator | null,
): Promise<ReportDiversity> {
  const rows = shape[0];
  if (!rows) return { all: null, perSearch: keptPerSearch.map(() => null) };
  const fits = evaluator !== null && fitsEval(evaluator, shape);
  const feats = fits ? await evaluator!.features(samples, shape) : samples;
  const space = fits ? String(evaluator!.module.card?.name ?? 'eval') : 'samples';
  const D = feats.length / rows;
  let at = 0;
  const perSearch = keptPerSearch.map((k) => {
    const part = feats.subarray(at * D, (at + k) * D);
    at += k;
    return k ? bounded(part, k, D, space) : null;
  });
  return { all: bounded(feats, rows, D, space), perSearch };
}

/** The eigen-solver is cubic in min(rows, dims): past VENDI_MAX the report leaves Vendi out (null). */
const VENDI_MAX = 400;

function bounded(feats: Float32Array, K: number, D: number, space: string): Diversity {
  if (Math.min(K, D) <= VENDI_MAX) return diversityOf(feats, K, D, space);
  const m = meanPairwiseCosineDistance(feats, K, D);
  return { mean_cosine_distance: Number.isFinite(m) ? m : null, vendi: null, space };
}

function fitsEval(ev: Evaluator, shape: number[]): boolean {
  try {
    checkSampleShape(ev.module, shape, 'eval');
    return true;
  } catch {
    return false;
  }
}
