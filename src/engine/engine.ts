/**
 * The engine a process holds (DESIGN.md, Wave 2): loaded models (./models), the batchers that
 * merge the forward calls of every search in flight (./batcher), admission (./admission),
 * threads (./threads) and metrics (./metrics). `engine.generate(options)` takes the same options
 * and returns the same result as `generate()` — which is a call of a short-lived engine. The n
 * searches of a request run at once (up to searchesPerRequest), each on its own stream, and
 * their model calls merge with those of every other request.
 */
import os from 'node:os';
import { DiffusionSearchError } from '../errors';
import type { Denoiser } from '../models/denoiser';
import { DEFAULT_MODEL, resolveModel } from '../models/shipped';
import { makeSchedule } from '../schedules';
import { adaptiveSettings } from '../samplers/adaptive';
import { algorithms } from '../search';
import type { SearchProgress, SearchResult, TraceEntry } from '../search/types';
import type { EvalReport } from '../eval/metrics';
import type { Verifier } from '../verifiers/verifier';
import { EnsembleVerifier } from '../verifiers/ensemble';
import { evaluatePrompts, type AttributeRules, type PromptEvalReport } from '../eval/prompt-eval';
import { createStream, type Stream } from '../stream';
import { tensor } from '../tensor';
import { registerPrompts, type RegisteredPrompts } from '../models/prompting';
import type { GenerateOptions, GenerateProgress, GenerateResult } from '../generate';
import { Admission } from './admission';
import { LaneRegistry, type Lane } from './batcher';
import { EngineMetrics, type MetricsSnapshot } from './metrics';
import { ModelCache, type Held } from './models';
import { configureThreads, type ThreadSettings, type WaitPolicy } from './threads';

export interface EngineOptions {
  /** 'cpu' (default) or 'cuda[:N]': every model of the engine lives there. */
  device?: string;
  /** Intra-op threads of libtorch and the kernels (process-wide; default: libtorch's). */
  threads?: number;
  /** OpenMP's wait policy, applied if the addon has not loaded yet (default PASSIVE, see ./threads). */
  waitPolicy?: WaitPolicy;
  /** Most rows per forward of a model (default 128: fashion-flow's forward slows 5-20× per row above ~170 rows on a 2-core CPU). */
  maxBatch?: number;
  /** Cross-search batching (default true); false: every search calls the models alone, as before engines. */
  batching?: boolean;
  /** Longest wait of an idle model for more callers, in µs (default 1000; 0: none). */
  batchWindowUs?: number;
  /**
   * Forwards of one model at once, each on its own stream (default: on CPU, the cores ÷ intra-op
   * threads, so `threads: 1` runs one forward per core; on CUDA, 1).
   */
  parallelForwards?: number;
  /** Requests running at once (default 16), plus up to ⌈maxActive/4⌉ each 4× smaller than all running (./admission). */
  maxActive?: number;
  /** Requests waiting beyond those; more are refused with BUSY (default 64). */
  maxQueue?: number;
  /** Searches of one request running at once (default 8). */
  searchesPerRequest?: number;
  /** Streams the searches' own kernels run on, shared by all searches (default 2). */
  searchStreams?: number;
  /** Ceiling on the estimated bytes running requests hold (default: half the RAM on CPU, none on CUDA). */
  memoryLimit?: number;
}

export interface EngineControl {
  signal?: AbortSignal;
  onProgress?: (p: GenerateProgress) => void;
}

/** Most searches (n) and kept samples per search (keep) in one request. */
const MAX_N = 1 << 20;
const MAX_KEEP = 4096;

/** Denoising steps when none are given: the same for `generate`, `sweep` and the CLI. */
export const DEFAULT_STEPS = 20;

export function resolveClass(cls: string | number | undefined, classes: string[] | undefined): number {
  if (cls === undefined) return 0;
  const names = classes ?? [];
  const asNum = typeof cls === 'number' ? cls : /^\d+$/.test(cls) ? Number(cls) : NaN;
  if (Number.isInteger(asNum) && asNum >= 0 && asNum < Math.max(1, names.length)) return asNum;
  const i = names.findIndex((c) => c.toLowerCase() === String(cls).toLowerCase());
  if (i >= 0) return i;
  throw new DiffusionSearchError(
    `unknown class '${cls}': use an index below ${Math.max(1, names.length)}${names.length ? ` or one of ${names.map((c) => `'${c}'`).join(', ')}` : ''}`,
    'ARGUMENT',
  );
}

/**
 * What a request holds while it runs, estimated: each running search's rows (≈ budget/steps per
 * model call, doubled under guidance) × the sample size × 8 (states, predictions, noise, copies),
 * plus every kept sample. Model activations are not counted: the batcher bounds them at maxBatch
 * rows per forward, whatever the load.
 */
export function estimateRequestBytes(o: { sampleNumel: number; searches: number; concurrent: number; budget: number; steps: number; keep: number; guided: boolean }): number {
  const sample = o.sampleNumel * 4;
  const rows = Math.min(o.budget, Math.max(1, Math.ceil(o.budget / Math.max(1, o.steps)))) * (o.guided ? 2 : 1);
  return Math.min(o.concurrent, o.searches) * (rows * sample * 8 + o.keep * sample) + o.searches * o.keep * sample;
}

const positiveInt = (v: number | undefined, name: string, dflt: number, allowInfinity = false) => {
  if (v === undefined) return dflt;
  if ((allowInfinity && v === Infinity) || (Number.isInteger(v) && v >= 1)) return v;
  throw new DiffusionSearchError(`${name} must be a positive integer, got ${v}`, 'ARGUMENT');
};

export class Engine {
  readonly device: string;
  readonly maxBatch: number;
  readonly batching: boolean;
  readonly searchesPerRequest: number;
  readonly parallelForwards: number;
  readonly threads: ThreadSettings;
  readonly metricsRegistry: EngineMetrics;
  private readonly lanes = new LaneRegistry();
  private readonly admission: Admission;
  readonly models: ModelCache;
  private nextLane = 1;
  private readonly streams: Stream[];
  private activeSearches = 0;
  /** Running requests' controllers (close() cancels them). */
  private readonly running = new Set<AbortController>();
  private closing: Promise<void> | null = null;
  /** Prompt registration per denoiser, one at a time (the null condition is registered once). */
  private readonly registering = new WeakMap<Denoiser, Promise<unknown>>();

  constructor(o: EngineOptions = {}) {
    this.device = o.device ?? 'cpu';
    this.maxBatch = positiveInt(o.maxBatch, 'maxBatch', 128);
    this.batching = o.batching ?? true;
    const windowUs = o.batchWindowUs ?? 1000;
    if (!(windowUs >= 0 && Number.isFinite(windowUs))) throw new DiffusionSearchError(`batchWindowUs must be a non-negative number, got ${o.batchWindowUs}`, 'ARGUMENT');
    this.searchesPerRequest = positiveInt(o.searchesPerRequest, 'searchesPerRequest', 8);
    if (o.threads !== undefined) positiveInt(o.threads, 'threads', 1);
    const memoryLimit = o.memoryLimit ?? (this.device === 'cpu' ? os.totalmem() / 2 : Infinity);
    if (!(memoryLimit > 0)) throw new DiffusionSearchError(`memoryLimit must be a positive number of bytes, got ${o.memoryLimit}`, 'ARGUMENT');
    this.admission = new Admission({ maxActive: positiveInt(o.maxActive, 'maxActive', 16, true), maxQueue: o.maxQueue === 0 ? 0 : positiveInt(o.maxQueue, 'maxQueue', 64, true), memoryLimit });
    this.threads = configureThreads({ threads: o.threads, waitPolicy: o.waitPolicy });
    this.metricsRegistry = new EngineMetrics(this.maxBatch);
    this.streams = Array.from({ length: positiveInt(o.searchStreams, 'searchStreams', 2) }, () => createStream({ device: this.device }));
    const parallel = positiveInt(o.parallelForwards, 'parallelForwards', this.device === 'cpu' ? Math.max(1, Math.floor(os.cpus().length / this.threads.threads)) : 1);
    this.parallelForwards = parallel;
    this.models = new ModelCache(this.device, { maxBatch: this.maxBatch, windowUs, enabled: this.batching, parallel }, this.lanes, this.metricsRegistry);
  }

  /** Counters and gauges (see MetricsSnapshot). */
  metrics(): MetricsSnapshot {
    const q = this.models.batchers().map((b) => b.queued);
    return this.metricsRegistry.snapshot({
      queueDepth: this.admission.queueDepth,
      activeRequests: this.admission.active,
      activeSearches: this.activeSearches,
      queuedCalls: q.reduce((s, x) => s + x.calls, 0),
      queuedRows: q.reduce((s, x) => s + x.rows, 0),
      reservedBytes: this.admission.reserved,
      memoryLimitBytes: this.admission.options.memoryLimit,
      loaded: this.models.size,
    });
  }

  /** The metrics in Prometheus' text format. */
  prometheus(): string {
    return this.metricsRegistry.prometheus(this.metrics());
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Same options and result as generate(); `maxBatch` is the engine's. BUSY when the queue is full. */
  async generate(o: GenerateOptions, control: EngineControl = {}): Promise<GenerateResult> {
    try {
      const r = await this.run(o, control);
      this.metricsRegistry.outcome(r.complete ? 'ok' : 'partial');
      return r;
    } catch (e) {
      const code = e instanceof DiffusionSearchError ? e.code : 'NATIVE';
      this.metricsRegistry.outcome(code === 'ABORTED' ? 'aborted' : code === 'BUSY' ? 'busy' : `error:${code}`);
      throw e;
    }
  }

  private async run(o: GenerateOptions, control: EngineControl): Promise<GenerateResult> {
    const started = performance.now();
    if (this.closing) throw new DiffusionSearchError('the engine is shutting down', 'BUSY');
    const algorithm = o.algorithm ?? 'evosearch';
    const algo = algorithms[algorithm];
    if (!algo) throw new DiffusionSearchError(`unknown algorithm '${algorithm}': use one of ${Object.keys(algorithms).join(', ')}`, 'ARGUMENT');
    const n = o.n ?? 1;
    // Bounded so that a huge n or keep is bad input, not an array allocation failing deep inside.
    if (!Number.isInteger(n) || n < 1 || n > MAX_N) throw new DiffusionSearchError(`n must be an integer from 1 to ${MAX_N}, got ${o.n}`, 'ARGUMENT');
    const keep = o.keep ?? 1;
    if (!Number.isInteger(keep) || keep < 1 || keep > MAX_KEEP) throw new DiffusionSearchError(`keep must be an integer from 1 to ${MAX_KEEP}, got ${o.keep}`, 'ARGUMENT');
    if (o.eval !== undefined && typeof o.eval !== 'boolean') throw new DiffusionSearchError(`eval must be true or false, got ${JSON.stringify(o.eval)}`, 'ARGUMENT');
    const budget = o.budget ?? 500;
    if (!Number.isInteger(budget) || budget < 1) throw new DiffusionSearchError(`budget must be a positive integer NFE per sample, got ${o.budget}`, 'BUDGET');
    const seed = o.seed ?? 0;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new DiffusionSearchError(`seed must be a non-negative integer, got ${o.seed}`, 'ARGUMENT');
    if (o.device !== undefined && o.device !== this.device)
      throw new DiffusionSearchError(`this engine runs on '${this.device}'; the request asks for '${o.device}'`, 'DEVICE');
    const modelName = o.model ?? DEFAULT_MODEL;
    const { file, shipped } = resolveModel(modelName);
    const held: Array<Held<unknown>> = [];
    const hold = async <T>(p: Promise<Held<T>>): Promise<T> => {
      const h = await p;
      held.push(h);
      return h.value;
    };
    let release: (() => void) | undefined;
    // Cancellation: the caller's signal, a failing sibling search, or the engine closing.
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(control.signal?.reason);
    control.signal?.addEventListener('abort', onAbort, { once: true });
    if (control.signal?.aborted) ctl.abort(control.signal.reason);
    this.running.add(ctl);
    const mainStream = this.streams[0];
    let registered: RegisteredPrompts | undefined;
    try {
      const denoiser = await hold(this.models.denoiser(file));
      const prompts = o.prompt === undefined ? undefined : Array.isArray(o.prompt) ? o.prompt : [o.prompt];
      if (denoiser.conditions && !prompts)
        throw new DiffusionSearchError(`'${modelName}' is conditioned on text: pass a prompt (--prompt "...")`, 'ARGUMENT');
      if (!denoiser.conditions && (prompts || o.negativePrompt !== undefined))
        throw new DiffusionSearchError(`'${modelName}' is class-conditional: pass --class${denoiser.classes ? ` (one of ${denoiser.classes.join(', ')})` : ''}, not a prompt`, 'ARGUMENT');
      // Guidance 1 never evaluates the unconditional branch: a negative prompt there would change nothing.
      if (o.negativePrompt !== undefined && (o.guidance ?? 1) === 1)
        throw new DiffusionSearchError('a negative prompt only acts under classifier-free guidance: set --guidance above 1 (e.g. 3), or drop the negative prompt', 'ARGUMENT');
      const cls = denoiser.conditions ? 0 : resolveClass(o.class, denoiser.classes);
      const verifierNames = o.verifier?.length ? o.verifier : shipped?.verifiers ?? [];
      if (!verifierNames.length) throw new DiffusionSearchError(`model '${modelName}' has no default verifier: pass --verifier`, 'ARGUMENT');
      const sampler = o.sampler ?? (algorithm === 'particles' || algorithm === 'beam' ? 'sde' : 'euler');
      const adaptive = o.schedule === 'adaptive';
      const sigmas = makeSchedule(o.schedule === 'adaptive' || o.schedule === undefined ? 'uniform' : o.schedule, o.steps ?? DEFAULT_STEPS, { shift: o.shift });
      const searches = (prompts?.length ?? 1) * n;
      const per = denoiser.sampleShape.reduce((a, b) => a * b, 1);
      const bytes = estimateRequestBytes({ sampleNumel: per, searches, concurrent: this.searchesPerRequest, budget, steps: sigmas.length - 1, keep, guided: (o.guidance ?? 1) !== 1 });
      release = await this.admission.admit(bytes, ctl.signal, searches * budget);

      const verifierParts = await Promise.all(verifierNames.map((v) => hold(this.models.verifier(v, o.maxBatch as number))));
      const verifier: Verifier = verifierParts.length === 1 ? verifierParts[0] : new EnsembleVerifier(verifierParts);
      const predictor = adaptive ? await hold(this.models.tpm(o.tpm ?? 'tpm')) : undefined;
      if (adaptive && sampler !== 'euler')
        throw new DiffusionSearchError(`the adaptive schedule steps with its module's rule (euler or ab2, --tpm-solver); --sampler ${sampler} does not apply (algorithm ${algorithm})`, 'ARGUMENT');
      const encoder = prompts ? await hold(this.models.textEncoder(denoiser, file)) : undefined;
      if (prompts) registered = await this.register(denoiser, () => registerPrompts(denoiser, encoder!, prompts, { negative: o.negativePrompt, stream: mainStream }));
      const conditions = registered?.ids ?? [cls];

      const lane: Lane = { id: this.nextLane++, signal: ctl.signal, work: searches * budget };
      const out = await this.searchAll({
        lane,
        cancel: (e) => ctl.abort(e),
        count: searches,
        budget,
        onProgress: control.onProgress,
        userSignal: control.signal,
        run: (k, stream, onProgress) =>
          algo.run(
            {
              denoiser,
              verifier,
              cls: conditions[Math.floor(k / n)],
              prompt: prompts?.[Math.floor(k / n)],
              budget,
              sigmas,
              sampler,
              eta: o.eta,
              guidance: o.guidance ?? 1,
              // Each sample's search has its own seed, so sample i is the same whatever n is.
              seed: BigInt(seed) * 1_000_003n + BigInt(k % n),
              stream,
              adaptive: predictor ? { predictor, maxSteps: o.maxSteps, solver: o.tpmSolver } : undefined,
              keep,
              signal: ctl.signal,
              onProgress,
            },
            (o.algorithmOptions ?? {}) as never,
          ),
      });
      const { results, complete } = out;
      const kept = out.kept.flat();
      const keptRewards = out.keptRewards.flat();
      const keptSteps = out.keptSteps.flat().map((s) => s ?? sigmas.length - 1);
      const keptCounts = out.kept.map((k) => k.length);
      const keptPrompts = prompts ? out.index.flatMap((k, i) => out.kept[i].map(() => prompts[Math.floor(k / n)])) : [];
      const decoded = await decodeRows(denoiser, kept, mainStream);
      const done = results.length;
      const latentShape = [kept.length, ...denoiser.sampleShape];
      const latents = new Float32Array(kept.length * per);
      kept.forEach((k, i) => latents.set(k, i * per));
      const outShape = decoded ? [kept.length, ...denoiser.decoder!.imageShape] : latentShape;
      const outSamples = decoded ?? latents;
      let evalReport: EvalReport | null = null;
      const wantEval = o.eval ?? (shipped?.name === 'fashion-flow' || shipped?.name === 'fashion-t2i');
      let promptEval: PromptEvalReport | null = null;
      const rules = denoiser.card.attributes as AttributeRules | undefined;
      if (wantEval && done > 0 && !prompts) {
        const ev = await hold(this.models.evaluator());
        evalReport = await ev.evaluate(outSamples, outShape, new Array(kept.length).fill(cls), denoiser.classes);
      } else if (wantEval && done > 0 && rules && denoiser.classes) {
        // A text-to-image model judged against its prompts: the class they name and the attributes they state.
        promptEval = await evaluatePrompts(outSamples, outShape, keptPrompts, denoiser.classes, rules, await hold(this.models.evaluator()));
      }
      const rewards = keptRewards;
      const report = {
        algorithm,
        model: modelName,
        model_file: file,
        class: prompts ? null : cls,
        class_name: prompts ? null : denoiser.classes?.[cls] ?? null,
        prompts: prompts ?? null,
        negative_prompt: o.negativePrompt ?? null,
        /** Words of each prompt the text encoder's vocabulary does not know (encoded as unknown). */
        unknown_words: registered?.unknown ?? null,
        budget,
        n: done,
        keep,
        /** Rows of samples.npy per search (K, or fewer when a search scored fewer distinct samples). */
        kept: keptCounts,
        complete,
        nfe_used: results.reduce((s, r) => s + r.nfe, 0),
        wall_seconds: (performance.now() - started) / 1000,
        search_seconds: results.reduce((s, r) => s + r.wallSeconds, 0),
        model_seconds: results.reduce((s, r) => s + r.modelSeconds, 0),
        verifier_seconds: results.reduce((s, r) => s + r.verifierSeconds, 0),
        /** Time in a latent model's decoder (not NFE: verifiers score decoded samples). */
        decoder_seconds: denoiser.decoder?.seconds ?? 0,
        rewards,
        verifier: verifier.name,
        steps: keptSteps,
        eval: evalReport,
        /** Text-to-image models with attribute rules: class and attribute accuracy against the prompts. */
        prompt_eval: promptEval,
        config: {
          model: modelName,
          class: prompts ? undefined : cls,
          prompt: prompts,
          negativePrompt: o.negativePrompt,
          algorithm,
          budget,
          n,
          keep,
          seed,
          verifier: verifierNames.map((v) => (typeof v === 'string' ? v : v.name)),
          steps: sigmas.length - 1,
          schedule: o.schedule ?? 'uniform',
          tpm: adaptive ? (o.tpm ?? 'tpm') : undefined,
          maxSteps: o.maxSteps,
          tpmSolver: predictor ? adaptiveSettings(predictor, { solver: o.tpmSolver }).solver : undefined,
          shift: o.shift,
          sampler,
          eta: o.eta,
          guidance: o.guidance ?? 1,
          device: o.device ?? 'cpu',
          algorithmOptions: o.algorithmOptions ?? {},
        },
        // `sample`: the search's index (searches finished before a cancellation may leave gaps).
        trace: results.map((r, i) => ({ sample: out.index[i], nfe: r.nfe, reward: r.reward, rounds: r.trace as TraceEntry[] })),
      };
      return {
        samples: outSamples,
        shape: outShape,
        latents: decoded ? { data: latents, shape: latentShape } : null,
        prompts: prompts ? keptPrompts : null,
        valueRange: (decoded ? denoiser.decoder!.spec.value_range : denoiser.card.value_range) ?? null,
        rewards,
        results,
        report,
        complete,
      };
    } finally {
      registered?.release();
      control.signal?.removeEventListener('abort', onAbort);
      this.running.delete(ctl);
      held.forEach((h) => h.release());
      release?.();
    }
  }

  /** Prompt registration, one request at a time per denoiser. */
  private register<T>(d: Denoiser, f: () => Promise<T>): Promise<T> {
    const prev = this.registering.get(d) ?? Promise.resolve();
    const next = prev.then(f, f);
    this.registering.set(d, next.catch(() => undefined));
    return next;
  }

  /**
   * Runs `count` searches, up to searchesPerRequest at once, each on its own stream registered
   * with the request's lane. Results come back in search order; after a cancellation, those
   * finished (complete = false), unless none was (ABORTED). Any other failure cancels the
   * siblings and is thrown.
   */
  private async searchAll(a: {
    lane: Lane;
    cancel: (reason: unknown) => void;
    count: number;
    budget: number;
    userSignal?: AbortSignal;
    onProgress?: (p: GenerateProgress) => void;
    run: (k: number, stream: Stream, onProgress: (p: SearchProgress) => void) => Promise<SearchResult>;
  }): Promise<{ results: GenerateResult['results']; kept: Float32Array[][]; keptRewards: number[][]; keptSteps: Array<Array<number | undefined>>; index: number[]; complete: boolean }> {
    const slots = new Array<{ rest: GenerateResult['results'][number]; kept: Float32Array[]; rewards: number[]; steps: Array<number | undefined> } | undefined>(a.count);
    const current = new Map<number, number>();
    let finishedNfe = 0, next = 0;
    let failure: unknown = null, abortedError: unknown = null;
    const ctlAbort = () => a.lane.signal?.aborted;
    const worker = async (w: number) => {
      // Searches share the engine's few streams (their kernels are small next to the model's
      // forwards); the lane travels with the async context.
      const stream = this.streams[(a.lane.id + w) % this.streams.length];
      while (next < a.count && failure === null && !ctlAbort()) {
        const k = next++;
        this.activeSearches++;
        let r: SearchResult | undefined;
        try {
          r = await this.lanes.run(a.lane, () =>
            a.run(k, stream, (p) => {
              current.set(k, p.nfe);
              let total = finishedNfe;
              for (const v of current.values()) total += v;
              a.onProgress?.({ ...p, sample: k, samples: a.count, totalNfe: total, totalBudget: a.count * a.budget });
            }),
          );
          const kept: Float32Array[] = [], rewards: number[] = [], steps: Array<number | undefined> = [];
          try {
            for (const t of r.top) {
              kept.push((await t.sample.toArray(stream)) as Float32Array);
              rewards.push(t.reward);
              steps.push(t.steps ?? r.steps);
            }
          } finally {
            r.top.forEach((t) => t.sample.dispose());
            r.sample.dispose();
          }
          const { sample: _s, top: _t, ...rest } = r;
          slots[k] = { rest, kept, rewards, steps };
          finishedNfe += r.nfe;
        } catch (e) {
          if (e instanceof DiffusionSearchError && e.code === 'ABORTED' && (a.userSignal?.aborted || this.closing)) abortedError ??= e;
          else if (failure === null) {
            failure = e;
            a.cancel(e); // a failing search cancels its siblings; the request fails with its error
          }
        } finally {
          current.delete(k);
          this.activeSearches--;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.searchesPerRequest, a.count) }, (_, w) => worker(w)));
    if (failure !== null) throw failure;
    const index = slots.flatMap((s, k) => (s ? [k] : []));
    const complete = index.length === a.count;
    if (!complete && index.length === 0)
      throw abortedError ?? new DiffusionSearchError('search cancelled', 'ABORTED', { cause: a.lane.signal?.reason });
    const done = index.map((k) => slots[k]!);
    return { results: done.map((s) => s.rest), kept: done.map((s) => s.kept), keptRewards: done.map((s) => s.rewards), keptSteps: done.map((s) => s.steps), index, complete };
  }

  /**
   * Stops admitting, lets running requests finish for up to `deadlineMs` (default 0), cancels the
   * rest (they end ABORTED, or partial with the searches finished) and frees every model.
   */
  close(options: { deadlineMs?: number } = {}): Promise<void> {
    this.closing ??= (async () => {
      this.admission.close('the engine is shutting down');
      const deadline = Date.now() + (options.deadlineMs ?? 0);
      while (this.running.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      this.running.forEach((c) => c.abort(new DiffusionSearchError('the engine is shutting down', 'ABORTED')));
      while (this.running.size) await new Promise((r) => setTimeout(r, 5));
      await this.models.close();
      await Promise.all(this.streams.map((s) => s.close()));
    })();
    return this.closing;
  }
}

export function createEngine(options: EngineOptions = {}): Engine {
  return new Engine(options);
}

/** A latent model's kept rows decoded to images (null for a pixel model). */
async function decodeRows(denoiser: Denoiser, rows: Float32Array[], stream: Stream): Promise<Float32Array | null> {
  if (!denoiser.decoder || rows.length === 0) return null;
  const per = rows[0].length;
  const all = new Float32Array(rows.length * per);
  rows.forEach((r, i) => all.set(r, i * per));
  const z = tensor(all, [rows.length, ...denoiser.sampleShape], { device: denoiser.device });
  try {
    const x = await denoiser.decoder.decode(z, stream);
    try {
      return Float32Array.from((await x.toArray(stream)) as Float32Array);
    } finally {
      x.dispose();
    }
  } finally {
    z.dispose();
  }
}
