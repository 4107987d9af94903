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

/**
 * `evalFeatures`: the eval model's feature rows of `samples` when the request is judged by it (and
 * its samples fit it), else null.
 */
export function reportDiversity(
  samples: Float32Array,
  shape: number[],
  keptPerSearch: number[],
  evalFeatures: { rows: Float32Array; space: string } | null,
): ReportDiversity {
  const rows = shape[0];
  if (!rows) return { all: null, perSearch: keptPerSearch.map(() => null) };
  const feats = evalFeatures?.rows ?? samples;
  const space = evalFeatures?.space ?? 'samples';
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

/** Whether samples of `shape` fit the eval model (else diversity is in the samples' coordinates). */
export function fitsEval(ev: Evaluator, shape: number[]): boolean {
  try {
    checkSampleShape(ev.module, shape, 'eval');
    return true;
  } catch {
    return false;
  }
}
