/**
 * Cross-search batching at the module-call level. Every call of a batchable module method from
 * every search in flight (the denoiser's row chunks [x, sigma, ...conditions], a verifier's
 * [x0, cond], the time predictor's [features, sigma]) goes through the module's batcher: calls
 * whose inputs are all tensors with the same row count N and the same trailing shapes and dtypes
 * are queued, joined along dim 0 into forwards of at most maxBatch rows, and the outputs (a tensor
 * or a tuple of tensors, each with the summed rows first) are split back per caller. Searches do
 * not know: the module they hold is the batched one.
 *
 * - Forward slots: up to `parallel` forwards of a model run at once, each on its own stream; with
 *   more than one, the forwards running at a moment share the intra-op threads (threads ÷ forwards
 *   running, native/addon/stream.cpp; forwards started together are capped at their share from the
 *   start). On a CPU, forwards side by side with one thread each use the cores better than one
 *   forward with several (bench/RESULTS.md), and a lone forward still gets every thread. On a GPU,
 *   one slot.
 * - Rows are shared out: a batch takes at most its share of the queued rows (queued ÷ free slots,
 *   at least `minRows`), so a lone search's call is cut across idle slots and a big queue fills each
 *   slot evenly. A call cut in pieces gets its outputs joined back in row order.
 * - While forwards run, calls accumulate; when a slot frees, the next batch takes them at once. An
 *   idle batcher waits at most `windowUs` for more callers (0: none), and not at all once every
 *   search that could call it is waiting (the engine says how many are running).
 * - Order: smaller requests first (a lane's `work`, its total NFE), round-robin among equals, one
 *   call per lane in turn; so a request with many rows cannot starve one with few. A forward takes
 *   only lanes within SIZE_CLASS× the first one's work: a small request's step waits for at most
 *   the forwards already running, then runs a small forward of its own rows.
 * - Express slot: with every slot busy, a request SIZE_CLASS× smaller than all those running gets
 *   a forward at once on one more stream (threads shared three ways meanwhile).
 * - A slot kept for small requests: while a request SIZE_CLASS× smaller than the queued ones is
 *   between two calls (its step's arithmetic, at most `holdMs`) or on the express slot, and no slot
 *   serves it, the last free slot waits for it instead of starting a big forward; so its next step
 *   runs at once on a core of its own, not beside two others or after a big forward.
 * - A second forward beside a running one waits for rows: it starts only once `minRows` rows are
 *   queued, the running forward has gone on for `spreadMs`, or the queue's first request is
 *   SIZE_CLASS× smaller than those running. Without it, a slot that frees starts at once on the
 *   few rows that came back meanwhile, and many small requests' forwards stay a few rows each.
 * - A lane's AbortSignal drops its queued rows at once (ABORTED); pieces already running finish.
 * - A merged forward that fails is retried piece by piece, so a bad input fails only its own search.
 * NFE is charged by the Denoiser before it calls, exactly as without batching.
 */
import { DiffusionSearchError } from '../errors';
import type { TorchModule } from '../module';
import type { ModuleInput, ModuleOutput, NativeStream, NativeTensor } from '../native';
import { OPTIMIZED_FORWARDS } from '../request/defaults';
import { createStream } from '../stream';
import { cat, slice } from '../tensor-ops';
import type { EngineMetrics, ModelKind } from './metrics';
import { batchKey, checkSplittable, disposeOutput, join, rowsOf, SIZE_CLASS, split } from './rows';

type Tensor = NativeTensor;

/** The request a stream's calls belong to. */
export interface Lane {
  id: number;
  signal?: AbortSignal;
  /** The request's total NFE: smaller requests are served first (default: last). */
  work?: number;
  /** Searches whose rows its calls carry (a step pool's lane: several; default 1), for the merged-forward count. */
  searches?: number;
}

/**
 * Which lane (request) a call belongs to: the one its stream is registered with (the engine gives
 * each search its own view of a shared stream), else the default lane; and how many searches are
 * running (could call a batcher now). A stream, not the async context: AsyncLocalStorage's promise
 * hooks ran on every promise of the process.
 */
export class LaneRegistry {
  private readonly lanes = new WeakMap<NativeStream, Lane>();
  /** Searches running. */
  active = 0;
  readonly defaultLane: Lane = { id: 0 };
  /** Registers a stream as one running search of `lane`. */
  set(stream: NativeStream, lane: Lane): void {
    this.lanes.set(stream, lane);
    this.active++;
  }
  delete(stream: NativeStream): void {
    if (this.lanes.delete(stream)) this.active--;
  }
  /** A running search waits where another caller calls for it (a step pool): not counted meanwhile. */
  park(): void {
    this.active--;
  }
  unpark(): void {
    this.active++;
  }
  get(stream: NativeStream | undefined): Lane {
    return (stream && this.lanes.get(stream)) ?? this.defaultLane;
  }
}

export interface BatcherOptions {
  /** Most rows per forward. */
  maxBatch: number;
  /** Longest wait for more callers when the batcher is idle, in microseconds (0: none). */
  windowUs: number;
  /** False: every call runs alone, on its caller's stream (as without an engine); metrics still count. */
  enabled: boolean;
  /** Forwards of the model at once, each on its own stream (default 1). */
  parallel?: number;
  /** Intra-op threads in force: forwards started together get an equal share each (default: no cap). */
  threads?: number;
  /**
   * Fewest rows a call is cut to when sharing rows out over idle slots. Default: when the module's
   * optimised copy serves its small calls (one thread each, per-row cost flat from a few rows on),
   * OPTIMIZED_FORWARDS.batchMinRows; else 16 (below 16 rows libtorch's convolutions take a slower
   * algorithm, so two small pieces cost more CPU than the whole call; bench/RESULTS.md).
   */
  minRows?: number;
  /** How long the last free slot waits for a small request between two of its calls, ms (default HOLD_MS). */
  holdMs?: number;
  /** How long a forward runs before one of under `minRows` rows starts beside it, ms (default SPREAD_MS; 0: now). */
  spreadMs?: number;
}

interface Pending {
  key: string;
  method: string;
  inputs: Tensor[];
  rows: number;
  lane: Lane;
  /** First row not yet handed to a forward. */
  next: number;
  /** Rows handed out whose outputs have not come back. */
  inflight: number;
  parts: Array<{ start: number; out: ModuleOutput }>;
  /** Set once resolved or rejected (or on its way to a rejection). */
  error?: unknown;
  settled: boolean;
  resolve: (v: ModuleOutput) => void;
  reject: (e: unknown) => void;
  onAbort?: () => void;
}

/** The searches a batch's pieces carry rows of. */
const searches = (batch: Piece[]) => batch.reduce((n, q) => n + (q.p.lane.searches ?? 1), 0);

/** Rows [start, end) of one call in a batch. */
interface Piece {
  p: Pending;
  start: number;
  end: number;
}

export class ModuleBatcher {
  private readonly queue: Pending[] = [];
  private busy = 0;
  private timer: { timeout?: NodeJS.Timeout; immediate?: NodeJS.Immediate } | null = null;
  private gatherUntil = 0;
  private lastLane = -1;
  private readonly streams: NativeStream[];
  private readonly free: number[];
  private closed = false;
  private readonly parallel: number;
  private readonly holdMs: number;
  private readonly spreadMs: number;
  /** When each regular slot's forward started (Infinity: idle). */
  private readonly slotSince: number[];
  private spreadTimer: NodeJS.Timeout | null = null;
  /** The work of the first lane each busy slot serves (Infinity: idle). */
  private readonly slotWork: number[];
  private expressBusy = false;
  /** Lanes with a known work that called lately: calls not yet answered, and when the last one was. */
  private readonly recent = new Map<number, { work: number; open: number; last: number }>();
  private holdTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly module: TorchModule,
    readonly kind: ModelKind,
    private readonly options: BatcherOptions,
    private readonly lanes: LaneRegistry,
    private readonly metrics: EngineMetrics,
    /** The name metrics use. */
    readonly label = module.path,
  ) {
    this.parallel = Math.max(1, Math.floor(options.parallel ?? 1));
    this.holdMs = Math.max(0, options.holdMs ?? HOLD_MS);
    this.spreadMs = Math.max(0, options.spreadMs ?? SPREAD_MS);
    this.slotSince = Array.from({ length: this.parallel }, () => Infinity);
    // One stream per slot, plus the express slot's (index `parallel`) when there are several; made
    // now, so a model's threads are all there once it is loaded (none appear later under load).
    const made = options.enabled ? (this.parallel > 1 ? this.parallel + 1 : 1) : 0;
    this.streams = Array.from({ length: made }, () => this.stream());
    this.free = Array.from({ length: this.parallel }, (_, i) => i);
    this.slotWork = Array.from({ length: this.parallel + 1 }, () => Infinity);
  }

  /** Fewest rows a call is cut to (BatcherOptions.minRows). */
  private get minRows(): number {
    if (this.options.minRows !== undefined) return Math.max(1, Math.floor(this.options.minRows));
    return this.module.optimizesSmallCalls ? OPTIMIZED_FORWARDS.batchMinRows : 16;
  }

  /** A slot's stream: with several slots, the forwards running at once share the intra-op threads. */
  private stream(): NativeStream {
    return createStream({ device: this.module.device, shareThreads: this.parallel > 1 });
  }

  /** Calls waiting and their rows not yet in a forward. */
  get queued(): { calls: number; rows: number } {
    return { calls: this.queue.length, rows: this.queue.reduce((s, p) => s + p.rows - p.next, 0) };
  }

  /** The module as searches see it: the same object, with call() routed here. */
  wrap(): TorchModule {
    const batched = Object.create(this.module) as TorchModule;
    Object.defineProperty(batched, 'call', {
      value: (method: string, inputs: ModuleInput[], stream?: NativeStream) => this.call(method, inputs, stream),
    });
    Object.defineProperty(batched, 'forward', { value: (...inputs: ModuleInput[]) => this.call('forward', inputs) });
    return batched;
  }

  async call(method: string, inputs: ModuleInput[], stream?: NativeStream): Promise<ModuleOutput> {
    const key = this.options.enabled ? batchKey(method, inputs) : null;
    if (key === null) return this.timed(() => this.module.call(method, inputs, stream), rowsOf(inputs), 1);
    if (this.closed) throw new DiffusionSearchError(`the engine holding '${this.label}' is closed`, 'STREAM_CLOSED');
    const lane = this.lanes.get(stream);
    if (lane.signal?.aborted) throw aborted(lane);
    const answered = this.track(lane);
    return new Promise<ModuleOutput>((res, rej) => {
      const rows = (inputs[0] as Tensor).shape[0];
      const resolve = (v: ModuleOutput) => (answered(), res(v));
      const reject = (e: unknown) => (answered(), rej(e));
      const p: Pending = {
        key,
        method,
        inputs: inputs as Tensor[],
        rows,
        lane,
        next: 0,
        inflight: 0,
        parts: [],
        settled: false,
        resolve,
        reject,
      };
      if (lane.signal) {
        p.onAbort = () => this.fail(p, aborted(lane));
        lane.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.queue.push(p);
      this.schedule();
    });
  }

  /**
   * Starts batches on free slots now, after one turn of the event loop (window 0), or when the
   * gathering window ends.
   */
  private schedule(): void {
    if (this.queue.length === 0) return;
    if (this.free.length === 0) {
      this.express();
      return;
    }
    // The batch is full, or every running search is waiting here: nobody else can join.
    const full = this.queued.rows >= this.options.maxBatch || this.queue.length >= Math.max(1, this.lanes.active);
    if (full) {
      this.clearTimer();
      this.runNext();
      return;
    }
    if (this.timer) return;
    if (this.options.windowUs <= 0) {
      this.timer = { immediate: setImmediate(() => ((this.timer = null), this.runNext())) };
      return;
    }
    this.gatherUntil = performance.now() + this.options.windowUs / 1000;
    this.wait();
  }

  /**
   * One timer to the window's end, to the millisecond (Node's timer resolution): a new call ends
   * the window early anyway when the batch fills or every running search has called (schedule).
   * Polling with setImmediate instead spun the JS thread for up to a millisecond per window.
   */
  private wait(): void {
    const left = this.gatherUntil - performance.now();
    if (left <= 0) {
      this.timer = null;
      this.runNext();
      return;
    }
    this.timer = { timeout: setTimeout(() => this.wait(), Math.max(1, Math.ceil(left))) };
  }

  private clearTimer(): void {
    if (this.timer?.timeout) clearTimeout(this.timer.timeout);
    if (this.timer?.immediate) clearImmediate(this.timer.immediate);
    this.timer = null;
  }

  /** Lanes with queued calls (of `key`, if given), in serving order: least work first, round-robin among equals. */
  private laneOrder(key?: string): Map<number, Pending[]> {
    const byLane = new Map<number, Pending[]>();
    for (const p of this.queue)
      if (key === undefined || p.key === key)
        (byLane.get(p.lane.id) ?? byLane.set(p.lane.id, []).get(p.lane.id)!).push(p);
    const work = (id: number) => byLane.get(id)![0].lane.work ?? Infinity;
    // Round-robin: ids after the one served first last time come first.
    const turn = (id: number) => (id > this.lastLane ? id : id + 2 ** 40);
    const ids = [...byLane.keys()].sort((a, b) => work(a) - work(b) || turn(a) - turn(b));
    return new Map(ids.map((id) => [id, byLane.get(id)!]));
  }

  /** The work of the lane laneOrder() puts first (Infinity: none known), without ordering them all. */
  private leastWork(): number {
    let least = Infinity;
    for (const p of this.queue) least = Math.min(least, p.lane.work ?? Infinity);
    return least;
  }

  /** The next batch: the first lane's key, one call per lane in turn, up to this slot's share of the rows. */
  private take(freeSlots: number): Piece[] {
    const first = this.laneOrder().values().next().value![0];
    const lanes = this.laneOrder(first.key);
    this.lastLane = lanes.keys().next().value!;
    // Requests of similar size share a forward: one over SIZE_CLASS × the first lane's work waits for
    // another slot, so a small request's step costs a small forward, not a share of a big one's.
    const most = (first.lane.work ?? Infinity) * SIZE_CLASS;
    for (const [id, list] of lanes) if ((list[0].lane.work ?? Infinity) > most) lanes.delete(id);
    let queuedRows = 0;
    for (const list of lanes.values()) for (const p of list) queuedRows += p.rows - p.next;
    const limit = Math.min(this.options.maxBatch, Math.max(this.minRows, Math.ceil(queuedRows / freeSlots)));
    const batch: Piece[] = [];
    let rows = 0;
    for (let progress = true; progress && rows < limit; ) {
      progress = false;
      for (const list of lanes.values()) {
        const p = list[0];
        if (!p || rows >= limit) continue;
        const left = p.rows - p.next;
        let n = Math.min(left, limit - rows);
        // No piece under minRows: a short tail rides along (within maxBatch), a short head waits.
        if (n < left && left - n < this.minRows && rows + left <= this.options.maxBatch) n = left;
        if (n < left && n < this.minRows && batch.length > 0) continue;
        batch.push({ p, start: p.next, end: p.next + n });
        p.next += n;
        p.inflight += n;
        rows += n;
        progress = true;
        if (p.next === p.rows) {
          list.shift();
          this.queue.splice(this.queue.indexOf(p), 1);
        }
      }
    }
    return batch;
  }

  /** Counts a lane's call as open until the returned function is called (once it is answered). */
  private track(lane: Lane): () => void {
    if (lane.work === undefined) return () => {};
    const now = performance.now();
    for (const [id, r] of this.recent) if (r.open === 0 && now - r.last > this.holdMs) this.recent.delete(id);
    const r = this.recent.get(lane.id) ?? { work: lane.work, open: 0, last: now };
    this.recent.set(lane.id, r);
    r.open++;
    return () => {
      r.open--;
      r.last = performance.now();
      // A slot held for it now waits holdMs at most (holdForSmall sets the timer).
      if (this.free.length > 0 && this.queue.length > 0) this.schedule();
    };
  }

  /**
   * Whether the last free slot waits for a small request instead of taking the queue's first lane:
   * one SIZE_CLASS× smaller than it is between calls (answered under holdMs ago) or running on the
   * express slot, and no regular slot serves a request that small. Sets a timer for when the wait ends.
   */
  private holdForSmall(): boolean {
    if (this.parallel < 2 || this.free.length !== 1) return false;
    const first = this.leastWork();
    const served = Math.min(...this.slotWork.slice(0, this.parallel));
    const now = performance.now();
    let until = -1;
    for (const [id, r] of this.recent) {
      if (r.work * SIZE_CLASS > first || r.work * SIZE_CLASS > served) continue;
      // Open and not queued, while no regular slot serves anything that small: on the express slot.
      if (r.open > 0) {
        if (!this.queue.some((p) => p.lane.id === id)) until = Infinity;
      } else if (now - r.last < this.holdMs) until = Math.max(until, r.last + this.holdMs);
    }
    if (until < 0) return false;
    if (until !== Infinity && !this.holdTimer)
      this.holdTimer = setTimeout(
        () => ((this.holdTimer = null), this.schedule()),
        Math.max(1, Math.ceil(until - now)),
      );
    return true;
  }

  /**
   * Whether a free slot waits instead of starting a forward beside a running one: fewer than
   * minRows rows are queued, the running forward started under spreadMs ago, and the queue's first
   * request is not SIZE_CLASS× smaller than those running. Sets a timer for when the wait ends.
   */
  private waitForRows(): boolean {
    if (this.parallel < 2 || this.free.length === this.parallel || this.queued.rows >= this.minRows) return false;
    const first = this.leastWork();
    if (first * SIZE_CLASS <= Math.min(...this.slotWork.slice(0, this.parallel))) return false;
    const wait = Math.min(...this.slotSince) + this.spreadMs - performance.now();
    if (wait <= 0) return false;
    this.spreadTimer ??= setTimeout(() => ((this.spreadTimer = null), this.schedule()), Math.max(1, Math.ceil(wait)));
    return true;
  }

  private runNext(): void {
    this.clearTimer();
    const started: Array<(threads: number) => void> = [];
    while (this.free.length > 0 && this.queue.length > 0) {
      if (this.holdForSmall() || this.waitForRows()) break;
      const batch = this.take(this.free.length);
      const slot = this.free.pop()!;
      started.push(this.start(batch, slot, () => this.free.push(slot)));
    }
    // Forwards started together split the threads from their first instruction: the first one,
    // running alone for an instant, would take them all and then run beside the others with more
    // threads than cores.
    const all = this.options.threads ?? 0;
    const threads = started.length > 1 && all > 0 ? Math.max(1, Math.floor(all / this.busy)) : 0;
    started.forEach((run) => run(threads));
    this.express();
  }

  /**
   * The express slot: with every slot busy, a request SIZE_CLASS× smaller than all those running
   * gets a forward of its own at once instead of waiting for one to end (the threads are shared
   * three ways meanwhile). Only with several slots: one slot serves requests in order.
   */
  private express(): void {
    if (this.parallel < 2 || this.expressBusy || this.free.length > 0 || this.queue.length === 0) return;
    const work = this.leastWork();
    if (work === Infinity || !(work * SIZE_CLASS <= Math.min(...this.slotWork.slice(0, this.parallel)))) return;
    this.clearTimer();
    this.expressBusy = true;
    this.start(this.take(1), this.parallel, () => (this.expressBusy = false))(0);
  }

  /** Takes the slot now; the forward starts when the returned function is called (threads: a cap, 0 none). */
  private start(batch: Piece[], slot: number, release: () => void): (threads: number) => void {
    this.busy++;
    this.slotWork[slot] = batch[0].p.lane.work ?? Infinity;
    if (slot < this.parallel) this.slotSince[slot] = performance.now();
    return (threads) =>
      void this.runBatch(batch, slot, threads).finally(() => {
        this.busy--;
        this.slotWork[slot] = Infinity;
        if (slot < this.parallel) this.slotSince[slot] = Infinity;
        release();
        this.schedule();
      });
  }

  private async runBatch(batch: Piece[], slot: number, threads: number): Promise<void> {
    const stream = this.streams[slot];
    if (batch.length > 1) {
      let outs: ModuleOutput[] | undefined;
      try {
        outs = await this.merged(batch, stream, threads);
      } catch {
        // Isolate the failure: each piece alone, so only a bad input fails (its own search).
      }
      if (outs) {
        for (let i = 0; i < batch.length; i++) await this.deliver(batch[i], outs[i], stream);
        return;
      }
    }
    for (const piece of batch) {
      try {
        await this.deliver(piece, await this.alone(piece, stream, threads), stream);
      } catch (e) {
        piece.p.inflight -= piece.end - piece.start;
        this.fail(piece.p, e);
      }
    }
  }

  /** One piece's forward by itself (the caller's own tensors when the piece is the whole call). */
  private async alone(piece: Piece, stream: NativeStream, threads: number): Promise<ModuleOutput> {
    const { p, start, end } = piece;
    if (start === 0 && end === p.rows)
      return this.timed(() => this.module.call(p.method, p.inputs, stream, threads), p.rows, searches([piece]));
    const joined = this.joined([piece], stream, threads);
    if (joined) return (await this.timed(() => joined, end - start, searches([piece])))[0];
    const cut: Tensor[] = [];
    try {
      for (const t of p.inputs) cut.push(await slice(t, start, end, stream));
      return await this.timed(() => this.module.call(p.method, cut, stream, threads), end - start, searches([piece]));
    } finally {
      cut.forEach((t) => t.dispose());
    }
  }

  /**
   * The pieces' rows joined, the method run and its outputs cut back per piece in one native job
   * (TorchModule.callJoined); null where the module cannot (a copy's first check, a module
   * without it).
   */
  private joined(batch: Piece[], stream: NativeStream, threads: number): Promise<ModuleOutput[]> | null {
    if (typeof this.module.callJoined !== 'function') return null;
    const pieces = batch.map(({ p, start, end }): [Tensor[], number, number] => [p.inputs, start, end]);
    return this.module.callJoined(batch[0].p.method, pieces, stream, threads);
  }

  /** One forward of the joined pieces, its outputs split per piece. */
  private async merged(batch: Piece[], stream: NativeStream, threads: number): Promise<ModuleOutput[]> {
    const total = batch.reduce((s, q) => s + q.end - q.start, 0);
    const joined = this.joined(batch, stream, threads);
    if (joined) return this.timed(() => joined, total, searches(batch));
    const owned: Tensor[] = [];
    let out: ModuleOutput | undefined;
    try {
      const joined: Tensor[] = [];
      for (let k = 0; k < batch[0].p.inputs.length; k++) {
        const parts: Tensor[] = [];
        for (const { p, start, end } of batch) {
          if (start === 0 && end === p.rows) parts.push(p.inputs[k]);
          else owned.push(await slice(p.inputs[k], start, end, stream)), parts.push(owned[owned.length - 1]);
        }
        owned.push(await cat(parts, stream));
        joined.push(owned[owned.length - 1]);
      }
      const call = () => this.module.call(batch[0].p.method, joined, stream, threads);
      out = await this.timed(call, total, searches(batch));
      checkSplittable(out, total, this.label, batch[0].p.method);
      const outs: ModuleOutput[] = [];
      try {
        let at = 0;
        for (const q of batch) {
          outs.push(await split(out, at, at + q.end - q.start, stream));
          at += q.end - q.start;
        }
      } catch (e) {
        outs.forEach(disposeOutput);
        throw e;
      }
      return outs;
    } finally {
      owned.forEach((t) => t.dispose());
      if (out !== undefined) disposeOutput(out);
    }
  }

  /** A piece's output is back: keep it; once every row of the call is back, join and resolve. */
  private async deliver({ p, start, end }: Piece, out: ModuleOutput, stream: NativeStream): Promise<void> {
    p.inflight -= end - start;
    if (p.settled || p.error !== undefined) {
      disposeOutput(out);
      return this.fail(p, p.error);
    }
    p.parts.push({ start, out });
    if (p.next < p.rows || p.inflight > 0) return;
    p.settled = true;
    this.unlisten(p);
    if (p.parts.length === 1) return p.resolve(out);
    const parts = p.parts.sort((a, b) => a.start - b.start).map((x) => x.out);
    try {
      p.resolve(await join(parts, stream));
    } catch (e) {
      p.reject(e);
    } finally {
      parts.forEach(disposeOutput);
      p.parts = [];
    }
  }

  /** Fails a call: its queued rows leave at once; it rejects once no piece of it is running. */
  private fail(p: Pending, e: unknown): void {
    if (p.settled) return;
    p.error ??= e;
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    p.next = p.rows;
    if (p.inflight > 0) return;
    p.settled = true;
    this.unlisten(p);
    p.parts.forEach((x) => disposeOutput(x.out));
    p.parts = [];
    p.reject(p.error);
  }

  private unlisten(p: Pending): void {
    if (p.onAbort) p.lane.signal!.removeEventListener('abort', p.onAbort);
  }

  private async timed<T>(f: () => Promise<T>, rows: number, callers: number): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.metrics.forward(this.label, this.kind, rows, (performance.now() - t0) / 1000, callers);
    }
  }

  /** Fails queued calls and closes the streams (after the running forwards). */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    if (this.holdTimer) clearTimeout(this.holdTimer);
    if (this.spreadTimer) clearTimeout(this.spreadTimer);
    for (const p of [...this.queue])
      this.fail(p, new DiffusionSearchError(`the engine holding '${this.label}' closed`, 'ABORTED'));
    while (this.busy > 0) await new Promise((r) => setTimeout(r, 1));
    await Promise.all(this.streams.map((s) => s.close()));
  }
}

/**
 * How long the last free slot waits for a small request between two of its calls: longer than
 * the arithmetic of its step between them, short beside a forward.
 */
const HOLD_MS = 5;

/**
 * How long a forward runs before a second one of fewer than minRows rows starts beside it: about
 * a small forward's length, so rows that come back meanwhile join the next forward instead.
 */
const SPREAD_MS = 40;

const aborted = (lane: Lane) =>
  new DiffusionSearchError('search cancelled while waiting for the model', 'ABORTED', { cause: lane.signal?.reason });

export { batchKey } from './rows';
