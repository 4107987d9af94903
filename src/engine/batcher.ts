/**
 * Cross-search batching at the module-call level. Every call of a batchable module method from
 * every search in flight (the denoiser's row chunks [x, sigma, ...conditions], a verifier's
 * [x0, cond], the time predictor's [features, sigma]) goes through the module's batcher: calls
 * whose inputs are all tensors with the same row count N and the same trailing shapes and dtypes
 * are queued, concatenated along dim 0 into one forward of at most maxBatch rows, and the
 * outputs (a tensor or a tuple of tensors, each with the summed rows first) are sliced back per
 * caller. Searches do not know: the module they hold is the batched one.
 *
 * - One batcher per loaded module (model × device), with its own stream: forwards of a model
 *   run one at a time, on that stream, so concurrent searches never oversubscribe the cores.
 * - While a forward runs, calls accumulate; when it ends the next batch takes them at once. An
 *   idle batcher waits at most `windowUs` for more callers (0: none), and not at all once every
 *   search that could call it is waiting (the engine says how many are running).
 * - Fairness: calls belong to lanes (a request); a batch takes one call per lane in turn,
 *   starting after the lane served first last time, so a request with many rows cannot starve one
 *   with few.
 * - A lane's AbortSignal drops its queued calls at once (ABORTED), freeing their rows.
 * - A merged forward that fails is retried caller by caller, so a bad input fails only its own
 *   search.
 * NFE is charged by the Denoiser before it calls, exactly as without batching.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { DiffusionSearchError } from '../errors';
import type { TorchModule } from '../module';
import type { ModuleInput, ModuleOutput, NativeStream, NativeTensor } from '../native';
import { createStream } from '../stream';
import { isTensor } from '../tensor';
import { cat, slice } from '../tensor-ops';
import type { EngineMetrics, ModelKind } from './metrics';

type Tensor = NativeTensor;

/** The request a stream's calls belong to. */
export interface Lane {
  id: number;
  signal?: AbortSignal;
}

/**
 * Which lane (request) a call belongs to: the async context the engine runs each search in
 * (AsyncLocalStorage follows every await), else the stream's registration; and how many searches
 * are running (could call a batcher now).
 */
export class LaneRegistry {
  private readonly lanes = new WeakMap<NativeStream, Lane>();
  readonly context = new AsyncLocalStorage<Lane>();
  /** Searches running. */
  active = 0;
  readonly defaultLane: Lane = { id: 0 };
  /** Registers a stream as one running search of `lane` (for callers outside an engine's context). */
  set(stream: NativeStream, lane: Lane): void {
    this.lanes.set(stream, lane);
    this.active++;
  }
  delete(stream: NativeStream): void {
    if (this.lanes.delete(stream)) this.active--;
  }
  /** Runs one search of `lane`: its calls carry the lane, and it counts as running. */
  async run<T>(lane: Lane, f: () => Promise<T>): Promise<T> {
    this.active++;
    try {
      return await this.context.run(lane, f);
    } finally {
      this.active--;
    }
  }
  get(stream: NativeStream | undefined): Lane {
    return this.context.getStore() ?? (stream && this.lanes.get(stream)) ?? this.defaultLane;
  }
}

export interface BatcherOptions {
  /** Most rows per forward. */
  maxBatch: number;
  /** Longest wait for more callers when the batcher is idle, in microseconds (0: none). */
  windowUs: number;
  /** False: every call runs alone, on its caller's stream (as without an engine); metrics still count. */
  enabled: boolean;
}

interface Pending {
  key: string;
  method: string;
  inputs: Tensor[];
  rows: number;
  lane: Lane;
  resolve: (v: ModuleOutput) => void;
  reject: (e: unknown) => void;
  onAbort?: () => void;
}


export class ModuleBatcher {
  private readonly queue: Pending[] = [];
  private running = false;
  private timer: { timeout?: NodeJS.Timeout; immediate?: NodeJS.Immediate } | null = null;
  private gatherUntil = 0;
  private lastLane = -1;
  private stream: NativeStream | null = null;
  private closed = false;

  constructor(
    readonly module: TorchModule,
    readonly kind: ModelKind,
    private readonly options: BatcherOptions,
    private readonly lanes: LaneRegistry,
    private readonly metrics: EngineMetrics,
    /** The name metrics use. */
    readonly label = module.path,
  ) {}

  /** Calls waiting and their rows. */
  get queued(): { calls: number; rows: number } {
    return { calls: this.queue.length, rows: this.queue.reduce((s, p) => s + p.rows, 0) };
  }

  /** The module as searches see it: the same object, with call() routed here. */
  wrap(): TorchModule {
    const batched = Object.create(this.module) as TorchModule;
    Object.defineProperty(batched, 'call', { value: (method: string, inputs: ModuleInput[], stream?: NativeStream) => this.call(method, inputs, stream) });
    Object.defineProperty(batched, 'forward', { value: (...inputs: ModuleInput[]) => this.call('forward', inputs) });
    return batched;
  }

  async call(method: string, inputs: ModuleInput[], stream?: NativeStream): Promise<ModuleOutput> {
    const key = this.options.enabled ? batchKey(method, inputs) : null;
    if (key === null) return this.timed(() => this.module.call(method, inputs, stream), rowsOf(inputs), 1);
    if (this.closed) throw new DiffusionSearchError(`the engine holding '${this.label}' is closed`, 'STREAM_CLOSED');
    const lane = this.lanes.get(stream);
    if (lane.signal?.aborted) throw aborted(lane);
    return new Promise<ModuleOutput>((resolve, reject) => {
      const p: Pending = { key, method, inputs: inputs as Tensor[], rows: (inputs[0] as Tensor).shape[0], lane, resolve, reject };
      if (lane.signal) {
        p.onAbort = () => {
          const i = this.queue.indexOf(p);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(aborted(lane));
          }
        };
        lane.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.queue.push(p);
      this.schedule();
    });
  }

  /** Starts a batch now, after one turn of the event loop (window 0), or when the gathering window ends. */
  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    // The batch is full, or every running search is waiting here: nobody else can join.
    const full = this.queued.rows >= this.options.maxBatch || this.queue.length >= Math.max(1, this.lanes.active);
    if (full) {
      this.clearTimer();
      return this.runNext();
    }
    if (this.timer) return;
    if (this.options.windowUs <= 0) {
      this.timer = { immediate: setImmediate(() => ((this.timer = null), this.runNext())) };
      return;
    }
    this.gatherUntil = performance.now() + this.options.windowUs / 1000;
    this.wait();
  }

  /** Sub-millisecond windows poll with setImmediate (timers have 1 ms resolution). */
  private wait(): void {
    const left = this.gatherUntil - performance.now();
    if (left <= 0) {
      this.timer = null;
      return this.runNext();
    }
    this.timer = left >= 1 ? { timeout: setTimeout(() => this.wait(), Math.floor(left)) } : { immediate: setImmediate(() => this.wait()) };
  }

  private clearTimer(): void {
    if (this.timer?.timeout) clearTimeout(this.timer.timeout);
    if (this.timer?.immediate) clearImmediate(this.timer.immediate);
    this.timer = null;
  }

  /** Takes the next batch: the oldest call's key, one call per lane in turn while rows fit. */
  private take(): Pending[] {
    const key = this.queue[0].key;
    const byLane = new Map<number, Pending[]>();
    for (const p of this.queue) if (p.key === key) (byLane.get(p.lane.id) ?? byLane.set(p.lane.id, []).get(p.lane.id)!).push(p);
    // Lanes in id order, starting after the one served first last time.
    const ids = [...byLane.keys()].sort((a, b) => a - b);
    const startAt = ids.findIndex((id) => id > this.lastLane);
    const order = startAt < 0 ? ids : [...ids.slice(startAt), ...ids.slice(0, startAt)];
    this.lastLane = order[0];
    const batch: Pending[] = [];
    let rows = 0;
    for (let progress = true; progress; ) {
      progress = false;
      for (const id of order) {
        const list = byLane.get(id)!;
        const p = list[0];
        if (!p || (batch.length > 0 && rows + p.rows > this.options.maxBatch)) continue;
        list.shift();
        batch.push(p);
        rows += p.rows;
        progress = true;
      }
    }
    for (const p of batch) {
      this.queue.splice(this.queue.indexOf(p), 1);
      if (p.onAbort) p.lane.signal!.removeEventListener('abort', p.onAbort);
    }
    return batch;
  }

  private runNext(): void {
    this.clearTimer();
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const batch = this.take();
    void this.runBatch(batch).finally(() => {
      this.running = false;
      this.schedule();
    });
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const stream = (this.stream ??= createStream({ device: this.module.device }));
    if (batch.length === 1) {
      const p = batch[0];
      try {
        p.resolve(await this.timed(() => this.module.call(p.method, p.inputs, stream), p.rows, 1));
      } catch (e) {
        p.reject(e);
      }
      return;
    }
    let outs: ModuleOutput[];
    try {
      outs = await this.merged(batch, stream);
    } catch {
      // Isolate the failure: each caller alone, so only a bad input fails (its own search).
      for (const p of batch) {
        try {
          p.resolve(await this.timed(() => this.module.call(p.method, p.inputs, stream), p.rows, 1));
        } catch (e) {
          p.reject(e);
        }
      }
      return;
    }
    batch.forEach((p, i) => p.resolve(outs[i]));
  }

  /** One forward of the concatenated inputs, its outputs split per caller. */
  private async merged(batch: Pending[], stream: NativeStream): Promise<ModuleOutput[]> {
    const total = batch.reduce((s, p) => s + p.rows, 0);
    const joined: Tensor[] = [];
    let out: ModuleOutput | undefined;
    try {
      for (let k = 0; k < batch[0].inputs.length; k++) joined.push(await cat(batch.map((p) => p.inputs[k]), stream));
      out = await this.timed(() => this.module.call(batch[0].method, joined, stream), total, batch.length);
      joined.forEach((t) => t.dispose());
      joined.length = 0;
      checkSplittable(out, total, this.label, batch[0].method);
      const parts: ModuleOutput[] = [];
      try {
        let at = 0;
        for (const p of batch) {
          parts.push(await split(out, at, at + p.rows, stream));
          at += p.rows;
        }
      } catch (e) {
        parts.forEach(disposeOutput);
        throw e;
      }
      return parts;
    } finally {
      joined.forEach((t) => t.dispose());
      if (out !== undefined) disposeOutput(out);
    }
  }

  private async timed<T>(f: () => Promise<T>, rows: number, callers: number): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.metrics.forward(this.label, this.kind, rows, (performance.now() - t0) / 1000, callers);
    }
  }

  /** Fails queued calls and closes the stream (after the running forward). */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    for (const p of this.queue.splice(0)) {
      if (p.onAbort) p.lane.signal!.removeEventListener('abort', p.onAbort);
      p.reject(new DiffusionSearchError(`the engine holding '${this.label}' closed`, 'ABORTED'));
    }
    while (this.running) await new Promise((r) => setTimeout(r, 1));
    await this.stream?.close();
  }
}

const aborted = (lane: Lane) => new DiffusionSearchError('search cancelled while waiting for the model', 'ABORTED', { cause: lane.signal?.reason });

/** Calls that can merge share a key: the method and each input's dtype, device and shape after dim 0. Null: not batchable. */
export function batchKey(method: string, inputs: ModuleInput[]): string | null {
  if (inputs.length === 0 || !inputs.every(isTensor)) return null;
  const ts = inputs as Tensor[];
  const n = ts[0].shape[0];
  if (n === undefined || n < 1 || ts.some((t) => t.shape.length === 0 || t.shape[0] !== n)) return null;
  return `${method}(${ts.map((t) => `${t.dtype}@${t.device}[${t.shape.slice(1)}]`).join(';')})`;
}

/** Rows of a call that is not batched (0 without tensor inputs: not a model evaluation). */
const rowsOf = (inputs: ModuleInput[]) => (isTensor(inputs[0]) && inputs[0].shape.length ? inputs[0].shape[0] : 0);

function checkSplittable(out: ModuleOutput, rows: number, label: string, method: string): void {
  const ok = (v: ModuleOutput): boolean => (isTensor(v) ? v.shape.length > 0 && v.shape[0] === rows : Array.isArray(v) ? v.every(ok) : true);
  if (!ok(out)) throw new DiffusionSearchError(`'${label}' ${method}: an output does not have the ${rows} rows of its inputs; it cannot be batched`, 'SHAPE');
}

async function split(out: ModuleOutput, start: number, end: number, stream: NativeStream): Promise<ModuleOutput> {
  if (isTensor(out)) return slice(out, start, end, stream);
  if (!Array.isArray(out)) return out;
  const parts: ModuleOutput[] = [];
  try {
    for (const v of out) parts.push(await split(v, start, end, stream));
  } catch (e) {
    parts.forEach(disposeOutput);
    throw e;
  }
  return parts;
}

function disposeOutput(v: ModuleOutput): void {
  if (isTensor(v)) v.dispose();
  else if (Array.isArray(v)) v.forEach(disposeOutput);
}
