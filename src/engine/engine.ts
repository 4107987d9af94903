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
import type { RegisteredPrompts } from '../models/prompting';
import { resolveModel } from '../models/shipped';
import { defaultMaxBatch, PREVIEW_MS } from '../request/defaults';
import { resolveRequest } from '../request/resolve';
import type { GenerateOptions, GenerateProgress, GenerateResult, ResolvedRequest } from '../request/types';
import { algorithms } from '../search';
import type { SearchConfig } from '../search/types';
import { createStream, type Stream } from '../stream';
import { Admission } from './admission';
import { assemble } from './assemble';
import { LaneRegistry } from './batcher';
import { StepPools } from './step-pool';
import { EngineMetrics, type MetricsSnapshot } from './metrics';
import { ModelCache, type Held } from './models';
import { searchAll, type SearchAllResult } from './search-all';
import { load, prepare, requestBytes, type Hold, type Loaded, type Prepared } from './stages';
import { checkPrecision, type Precision } from '../precision';
import { configureThreads, type ThreadSettings, type WaitPolicy } from './threads';

export { estimateRequestBytes } from './stages';

export interface EngineOptions {
  /** 'cpu' (default) or 'cuda[:N]': every model of the engine lives there. */
  device?: string;
  /** The denoisers' forwards: 'fp32' (default) or 'bf16' (src/precision.ts); requests for another are refused. */
  precision?: Precision;
  /** Intra-op threads of libtorch and the kernels (process-wide; default: libtorch's). */
  threads?: number;
  /** OpenMP's wait policy, applied if the addon has not loaded yet (default PASSIVE, see ./threads). */
  waitPolicy?: WaitPolicy;
  /** Most rows per forward of a model (default: src/request/defaults' defaultMaxBatch, per device). */
  maxBatch?: number;
  /** Cross-search batching (default true); false: every search calls the models alone, as before engines. */
  batching?: boolean;
  /** Longest wait of an idle model for more callers, in µs (default 1000; 0: none). */
  batchWindowUs?: number;
  /**
   * Forwards of one model at once, each on its own stream (default: on CPU, the cores — forwards
   * side by side share the intra-op threads, a lone one gets them all, and a call is cut over idle
   * slots; on CUDA, 1).
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
  /** False: a request that would wait for a place fails at once with NoRoomError (BUSY) instead. */
  wait?: boolean;
}

const positiveInt = (v: number | undefined, name: string, dflt: number, allowInfinity = false) => {
  if (v === undefined) return dflt;
  if ((allowInfinity && v === Infinity) || (Number.isInteger(v) && v >= 1)) return v;
  throw new DiffusionSearchError(`${name} must be a positive integer, got ${v}`, 'ARGUMENT');
};

export class Engine {
  readonly device: string;
  readonly precision: Precision;
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
  /** Euler segments of every search, stepped together (with batching on). */
  private readonly stepPools: StepPools | undefined;
  private activeSearches = 0;
  /** Running requests' controllers (close() cancels them). */
  private readonly running = new Set<AbortController>();
  private closing: Promise<void> | null = null;
  /** Prompt registration per denoiser, one at a time (the null condition is registered once). */
  private readonly registering = new WeakMap<Denoiser, Promise<unknown>>();

  constructor(o: EngineOptions = {}) {
    this.device = o.device ?? 'cpu';
    this.precision = o.precision ?? 'fp32';
    checkPrecision(this.precision, this.device);
    this.maxBatch = positiveInt(o.maxBatch, 'maxBatch', defaultMaxBatch(this.device));
    this.batching = o.batching ?? true;
    const windowUs = o.batchWindowUs ?? 1000;
    if (!(windowUs >= 0 && Number.isFinite(windowUs)))
      throw new DiffusionSearchError(`batchWindowUs must be a non-negative number, got ${o.batchWindowUs}`, 'ARGUMENT');
    this.searchesPerRequest = positiveInt(o.searchesPerRequest, 'searchesPerRequest', 8);
    if (o.threads !== undefined) positiveInt(o.threads, 'threads', 1);
    const memoryLimit = o.memoryLimit ?? (this.device === 'cpu' ? os.totalmem() / 2 : Infinity);
    if (!(memoryLimit > 0))
      throw new DiffusionSearchError(
        `memoryLimit must be a positive number of bytes, got ${o.memoryLimit}`,
        'ARGUMENT',
      );
    this.admission = new Admission({
      maxActive: positiveInt(o.maxActive, 'maxActive', 16, true),
      maxQueue: o.maxQueue === 0 ? 0 : positiveInt(o.maxQueue, 'maxQueue', 64, true),
      memoryLimit,
    });
    this.threads = configureThreads({ threads: o.threads, waitPolicy: o.waitPolicy });
    this.metricsRegistry = new EngineMetrics(this.maxBatch);
    this.streams = Array.from({ length: positiveInt(o.searchStreams, 'searchStreams', 2) }, () =>
      createStream({ device: this.device }),
    );
    // DS_STEP_POOL=0: searches step alone through the batcher, to measure the pool against.
    this.stepPools =
      this.batching && process.env.DS_STEP_POOL !== '0'
        ? new StepPools({
            lanes: this.lanes,
            stream: () => this.streams[this.nextLane % this.streams.length].view(),
            laneId: () => this.nextLane++,
          })
        : undefined;
    const parallel = positiveInt(o.parallelForwards, 'parallelForwards', this.device === 'cpu' ? os.cpus().length : 1);
    this.parallelForwards = parallel;
    this.models = new ModelCache(
      { device: this.device, precision: this.precision },
      { maxBatch: this.maxBatch, windowUs, enabled: this.batching, parallel, threads: this.threads.threads },
      this.lanes,
      this.metricsRegistry,
    );
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

  /**
   * The estimated memory of a resolved request (its denoiser is loaded for the sample size, and
   * stays cached), as admission counts it.
   */
  async estimate(r: ResolvedRequest): Promise<number> {
    const { file, shipped } = resolveModel(r.model);
    const held = await this.models.denoiser(file);
    try {
      return requestBytes(prepare(r, held.value, file, shipped), this.searchesPerRequest);
    } finally {
      held.release();
    }
  }

  /** resolve → prepare (the denoiser) → admit → load the rest → search → assemble. */
  private async run(o: GenerateOptions, control: EngineControl): Promise<GenerateResult> {
    const started = performance.now();
    if (this.closing) throw new DiffusionSearchError('the engine is shutting down', 'BUSY');
    const r = resolveRequest(o);
    if (r.device !== undefined && r.device !== this.device)
      throw new DiffusionSearchError(
        `this engine runs on '${this.device}'; the request asks for '${r.device}'`,
        'DEVICE',
      );
    if (r.precision !== undefined && r.precision !== this.precision)
      throw new DiffusionSearchError(
        `this engine runs its models in ${this.precision}; the request asks for ${r.precision} (start it with ` +
          `precision ${r.precision})`,
        'ARGUMENT',
      );
    const { file, shipped } = resolveModel(r.model);
    const scope = new RequestScope(control.signal);
    this.running.add(scope.ctl);
    try {
      const p = prepare(r, await scope.hold(this.models.denoiser(file)), file, shipped);
      scope.release = await this.admission.admit(
        requestBytes(p, this.searchesPerRequest),
        scope.ctl.signal,
        r.searches * r.budget,
        control.wait ?? true,
      );
      const register = <T>(d: Denoiser, f: () => Promise<T>) => this.register(d, f);
      const l = await load(p, this.models, scope.hold, register, (reg) => (scope.registered = reg), this.streams[0]);
      const out = await this.search(p, l, scope, control);
      return await assemble({
        p,
        l,
        registered: scope.registered,
        out,
        models: this.models,
        hold: scope.hold,
        stream: this.streams[0],
        started,
      });
    } finally {
      scope.end();
      this.running.delete(scope.ctl);
    }
  }

  /** The request's searches, one per (prompt, sample), on a lane of their own. */
  private search(p: Prepared, l: Loaded, scope: RequestScope, control: EngineControl): Promise<SearchAllResult> {
    const { r } = p;
    // Each of the searches running at once may show one preview per `every` ms: a few a second for the request.
    const every = PREVIEW_MS * Math.min(r.searches, this.searchesPerRequest);
    const wantPreviews = !!r.preview && !!control.onProgress;
    const ctx = {
      streams: this.streams,
      lanes: this.lanes,
      searchesPerRequest: this.searchesPerRequest,
      closing: () => this.closing !== null,
      active: (d: number) => (this.activeSearches += d),
    };
    return searchAll(ctx, {
      lane: { id: this.nextLane++, signal: scope.ctl.signal, work: r.searches * r.budget },
      cancel: (e) => scope.ctl.abort(e),
      count: r.searches,
      budget: r.budget,
      onProgress: control.onProgress,
      userSignal: control.signal,
      run: (k, stream, onProgress) => {
        const config: SearchConfig = {
          ...searchConfig(p, l, k),
          stream,
          signal: scope.ctl.signal,
          stepPool: this.stepPools,
          onProgress,
          previewGate: wantPreviews ? throttle(every) : undefined,
        };
        return algorithms[r.algorithm].run(config, r.algorithmOptions as never);
      },
    });
  }

  /** Prompt registration, one request at a time per denoiser. */
  private register<T>(d: Denoiser, f: () => Promise<T>): Promise<T> {
    const prev = this.registering.get(d) ?? Promise.resolve();
    const next = prev.then(f, f);
    this.registering.set(
      d,
      next.catch(() => undefined),
    );
    return next;
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

/** True at most once every `ms` milliseconds (the first call passes). */
function throttle(ms: number): () => boolean {
  let last = -Infinity;
  return () => {
    const now = performance.now();
    if (now - last < ms) return false;
    last = now;
    return true;
  };
}

/** Search k's config: its condition and prompt (searches are grouped by prompt), its own seed. */
function searchConfig(p: Prepared, l: Loaded, k: number): SearchConfig {
  const { r, denoiser, sigmas } = p;
  const which = Math.floor(k / r.n);
  return {
    denoiser,
    verifier: l.verifier,
    cls: l.conditions[which],
    prompt: r.prompts?.[which],
    budget: r.budget,
    sigmas,
    sampler: r.sampler,
    eta: r.eta,
    guidance: r.guidance,
    // Each sample's search has its own seed, so sample i is the same whatever n is.
    seed: BigInt(r.seed) * 1_000_003n + BigInt(k % r.n),
    adaptive: l.predictor ? { predictor: l.predictor, maxSteps: r.maxSteps, solver: r.tpmSolver } : undefined,
    keep: r.keep,
    diversity: r.diversity,
    alpha: r.alpha,
    // The samples returned are the images the verifier scored (./assemble decodes nothing again).
    keepImages: true,
  };
}

/**
 * What one request holds while it runs: its models, its admission place, its prompts'
 * registration, and its cancellation (the caller's signal, a failing sibling search, or the
 * engine closing). end() gives everything back.
 */
class RequestScope {
  readonly ctl = new AbortController();
  release?: () => void;
  registered?: RegisteredPrompts;
  private readonly held: Array<Held<unknown>> = [];
  private readonly onAbort: () => void;

  constructor(private readonly signal: AbortSignal | undefined) {
    this.onAbort = () => this.ctl.abort(signal?.reason);
    signal?.addEventListener('abort', this.onAbort, { once: true });
    if (signal?.aborted) this.ctl.abort(signal.reason);
  }

  readonly hold: Hold = async (p) => {
    const h = await p;
    this.held.push(h);
    return h.value;
  };

  end(): void {
    this.registered?.release();
    this.signal?.removeEventListener('abort', this.onAbort);
    this.held.forEach((h) => h.release());
    this.release?.();
  }
}
