/**
 * The n searches of one request: up to searchesPerRequest at once, each on one of the engine's
 * search streams, registered with the request's lane. Results come back in search order; after a
 * cancellation, those finished (complete = false), unless none was (ABORTED). Any other failure
 * cancels the siblings and is thrown.
 */
import { DiffusionSearchError } from '../errors';
import type { SearchProgress, SearchResult } from '../search/types';
import type { Stream } from '../stream';
import type { GenerateProgress, GenerateResult } from '../request/types';
import type { Lane, LaneRegistry } from './batcher';

export interface SearchAllContext {
  streams: Stream[];
  lanes: LaneRegistry;
  searchesPerRequest: number;
  /** True once the engine is closing (a cancellation then is the engine's, not a failure). */
  closing(): boolean;
  /** Counts the searches running in the engine (+1 at a start, −1 at an end). */
  active(delta: number): void;
}

export interface SearchAllRequest {
  lane: Lane;
  cancel: (reason: unknown) => void;
  count: number;
  budget: number;
  userSignal?: AbortSignal;
  onProgress?: (p: GenerateProgress) => void;
  run: (k: number, stream: Stream, onProgress: (p: SearchProgress) => void) => Promise<SearchResult>;
}

/** One finished search: its result without tensors, and its kept rows copied out. */
export interface Finished {
  rest: GenerateResult['results'][number];
  kept: Float32Array[];
  /** A latent model's kept rows as the images their verifier scored (null for a pixel model). */
  images: Float32Array[] | null;
  rewards: number[];
  steps: Array<number | undefined>;
}

export interface SearchAllResult {
  /** The finished searches, in search order, and their indices. */
  done: Finished[];
  index: number[];
  complete: boolean;
}

export async function searchAll(c: SearchAllContext, a: SearchAllRequest): Promise<SearchAllResult> {
  const slots = new Array<Finished | undefined>(a.count);
  const current = new Map<number, number>();
  let finishedNfe = 0,
    next = 0;
  let failure: unknown = null,
    abortedError: unknown = null;
  const progress = (k: number) => (p: SearchProgress) => {
    current.set(k, p.nfe);
    let total = finishedNfe;
    for (const v of current.values()) total += v;
    a.onProgress?.({ ...p, sample: k, samples: a.count, totalNfe: total, totalBudget: a.count * a.budget });
  };
  const worker = async (w: number) => {
    // Searches share the engine's few streams (their kernels are small next to the model's
    // forwards), each through a view of its own that carries its lane to the batchers.
    const shared = c.streams[(a.lane.id + w) % c.streams.length];
    while (next < a.count && failure === null && !a.lane.signal?.aborted) {
      const k = next++;
      c.active(1);
      let stream: Stream | undefined;
      try {
        stream = shared.view();
        c.lanes.set(stream, a.lane);
        const r = await a.run(k, stream, progress(k));
        slots[k] = await copyOut(r, stream);
        finishedNfe += r.nfe;
      } catch (e) {
        if (e instanceof DiffusionSearchError && e.code === 'ABORTED' && (a.userSignal?.aborted || c.closing()))
          abortedError ??= e;
        else if (failure === null) {
          failure = e;
          a.cancel(e); // a failing search cancels its siblings; the request fails with its error
        }
      } finally {
        if (stream) c.lanes.delete(stream);
        current.delete(k);
        c.active(-1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(c.searchesPerRequest, a.count) }, (_, w) => worker(w)));
  if (failure !== null) throw failure;
  const index = slots.flatMap((s, k) => (s ? [k] : []));
  const complete = index.length === a.count;
  if (!complete && index.length === 0)
    throw abortedError ?? new DiffusionSearchError('search cancelled', 'ABORTED', { cause: a.lane.signal?.reason });
  return { done: index.map((k) => slots[k]!), index, complete };
}

/** A search's kept rows (and their scored images) as arrays; its tensors disposed. */
async function copyOut(r: SearchResult, stream: Stream): Promise<Finished> {
  const kept: Float32Array[] = [],
    rewards: number[] = [],
    steps: Array<number | undefined> = [];
  const images: Float32Array[] | null = r.top.some((t) => t.image) ? [] : null;
  try {
    for (const t of r.top) {
      kept.push((await t.sample.toArray(stream)) as Float32Array);
      if (images) images.push(await imageOf(t, stream));
      rewards.push(t.reward);
      steps.push(t.steps ?? r.steps);
    }
  } finally {
    r.top.forEach((t) => (t.sample.dispose(), t.image?.dispose()));
    r.sample.dispose();
  }
  const { sample: _s, top: _t, ...rest } = r;
  return { rest, kept, images, rewards, steps };
}

async function imageOf(t: SearchResult['top'][number], stream: Stream): Promise<Float32Array> {
  if (!t.image) throw new DiffusionSearchError('internal: a kept latent came without its scored image', 'NATIVE');
  return (await t.image.toArray(stream)) as Float32Array;
}
