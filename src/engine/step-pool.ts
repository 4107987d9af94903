/**
 * Iteration-level batching of Euler segments (as continuous batching in LLM serving): the rows of
 * every search that steps with Euler along a fixed schedule sit in one state tensor, and each
 * iteration takes them all one step — one model call and one native combine for every search in
 * the pool, at each row's own σ. Searches join at the next iteration and leave when their segment
 * ends. What a search would do per step in JS (its tensors, its call through the batcher, its
 * combine) is done once per iteration for all of them.
 *
 * One pool per (denoiser, guidance, request size class): requests of similar work share forwards,
 * as the batcher's lanes do (./batcher), so a small request's steps never wait for a big one's.
 * A search's rows get the same model output and step as on their own, up to the batch size's
 * effect on the forward (as for any merged forward). NFE is charged to each search before the
 * model runs; a cancelled search leaves at the next iteration.
 */
import type { Denoiser, NfeMeter } from '../models/denoiser';
import type { NativeStream, NativeTensor } from '../native';
import { eulerStep, type StepResult } from '../samplers';
import { TensorScope } from '../tensor-scope';
import type { EulerSegment, SegmentResult, StepPool } from '../search/types';
import type { Stream } from '../stream';
import { cat, gather, slice } from '../tensor-ops';
import type { Lane, LaneRegistry } from './batcher';
import { SIZE_CLASS } from './rows';

type Tensor = NativeTensor;

/** A member's own cancellation error, if its search was cancelled. */
function cancelled(m: Member): unknown {
  try {
    m.check();
    return undefined;
  } catch (e) {
    return e;
  }
}

interface Member extends EulerSegment {
  rows: number;
  /** Its request's total NFE (the batcher's order). */
  work: number;
  /** The schedule index its rows are at. */
  at: number;
  cost: number;
  x0: Tensor | null;
  x0Mid: Tensor | null;
  /** Set once it left (resolved or rejected). */
  left: boolean;
  /** Listens to its search's cancellation while it is in. */
  onAbort?: () => void;
  resolve: (r: SegmentResult) => void;
  reject: (e: unknown) => void;
}

export interface StepPoolContext {
  lanes: LaneRegistry;
  /** A stream for a pool's own work (a view of one of the engine's). */
  stream: () => Stream;
  laneId: () => number;
}

/** The engine's pools, found by denoiser, guidance and the request's size class. */
export class StepPools implements StepPool {
  private readonly pools = new WeakMap<Denoiser, Map<string, EulerPool>>();

  constructor(private readonly c: StepPoolContext) {}

  euler(seg: EulerSegment): Promise<SegmentResult> {
    const work = this.c.lanes.get(seg.stream).work ?? Infinity;
    const size = Number.isFinite(work) ? Math.floor(Math.log(work) / Math.log(SIZE_CLASS)) : -1;
    const key = `${seg.guidance}/${size}`;
    let byKey = this.pools.get(seg.denoiser);
    if (!byKey) this.pools.set(seg.denoiser, (byKey = new Map()));
    let pool = byKey.get(key);
    if (!pool) byKey.set(key, (pool = new EulerPool(seg.denoiser, seg.guidance, { id: this.c.laneId() }, this.c)));
    return pool.add(seg, work);
  }
}

class EulerPool {
  private members: Member[] = [];
  private joining: Member[] = [];
  /** The members' rows, in member order (null while none is in). */
  private x: Tensor | null = null;
  private stream: Stream | null = null;
  /** Cancels the running step's model call once every search in it is cancelled (its lane's signal). */
  private cancel: AbortController | null = null;
  /** Model time goes to every member, as each search counted its own call's time. */
  private readonly meter: NfeMeter = {
    charge: () => undefined, // each member was charged before the step
    addModelTime: (s) => this.members.forEach((m) => m.meter.addModelTime(s)),
  };

  constructor(
    private readonly denoiser: Denoiser,
    private readonly guidance: number,
    private readonly lane: Lane,
    private readonly c: StepPoolContext,
  ) {}

  add(seg: EulerSegment, work: number): Promise<SegmentResult> {
    return new Promise((resolve, reject) => {
      const rows = seg.x.shape[0];
      const cost = this.denoiser.cost(rows, this.guidance);
      this.joining.push({
        ...seg,
        rows,
        work,
        at: seg.from,
        cost,
        x0: null,
        x0Mid: null,
        left: false,
        resolve,
        reject,
      });
      // A search waiting here makes no call of its own: the batcher counts the pool instead.
      this.c.lanes.park();
      if (!this.stream) void this.loop();
    });
  }

  private async loop(): Promise<void> {
    const stream = (this.stream = this.c.stream());
    this.c.lanes.set(stream, this.lane);
    try {
      while (this.joining.length > 0 || this.members.length > 0)
        try {
          await this.iterate(stream);
        } catch (e) {
          // The members in the step fail with it (a cancelled one with its own error); those joining go on.
          this.members.forEach((m) => this.leave(m, cancelled(m) ?? e));
          this.members = [];
          this.x?.dispose();
          this.x = null;
        }
    } finally {
      this.x?.dispose();
      this.x = null;
      this.c.lanes.delete(stream);
      void stream.close().catch(() => undefined); // a view: the engine's queue stays open
      this.stream = null;
    }
  }

  /** Newcomers in, cancelled ones out, one step for every row, finished segments out. */
  private async iterate(stream: NativeStream): Promise<void> {
    await this.admit(stream);
    const staying = this.members.filter((m) => this.charged(m));
    if (staying.length < this.members.length) await this.keepRows(this.x!, staying, stream);
    if (this.members.length === 0) return;
    // The pool's calls are ordered as its smallest request's would be.
    const least = Math.min(...this.members.map((m) => m.work));
    this.lane.work = Number.isFinite(least) ? least : undefined;
    this.lane.searches = this.members.length;
    this.cancel = new AbortController();
    this.lane.signal = this.cancel.signal;
    const r = await this.step(stream);
    this.x!.dispose();
    this.x = r?.x ?? null;
    if (!r) return;
    try {
      await this.takePredictions(r.x0, stream);
    } finally {
      r.x0.dispose();
    }
    await this.release(stream);
  }

  /**
   * One Euler step of every member's rows. When it fails with several members, each member's rows
   * are stepped alone (as the batcher retries a merged forward piece by piece), so a failure fails
   * only the searches whose own rows fail; those leave with their error.
   */
  private async step(stream: NativeStream): Promise<StepResult | null> {
    try {
      return await this.stepRows(this.x!, this.members, stream);
    } catch (e) {
      if (this.members.length === 1 || this.cancel?.signal.aborted) throw e;
    }
    const done: Array<{ m: Member; r: StepResult }> = [];
    this.lane.searches = 1;
    let a = 0;
    try {
      for (const m of this.members) {
        using s = new TensorScope();
        const x = await s.track(slice(this.x!, a, a + m.rows, stream));
        a += m.rows;
        try {
          done.push({ m, r: await this.stepRows(x, [m], stream) });
        } catch (e) {
          this.leave(m, e);
        }
      }
      this.members = done.map((d) => d.m);
      if (done.length === 0) return null;
      const [xs, x0s] = [done.map((d) => d.r.x), done.map((d) => d.r.x0)];
      return { x: await cat(xs, stream), x0: await cat(x0s, stream) };
    } finally {
      done.forEach(({ r }) => (r.x.dispose(), r.x0.dispose()));
    }
  }

  /** The Euler step of `members`' rows x, each at its own σ. */
  private stepRows(x: Tensor, members: Member[], stream: NativeStream): Promise<StepResult> {
    const from: number[] = [],
      to: number[] = [],
      cond: number[] = [];
    for (const m of members)
      for (let r = 0; r < m.rows; r++) from.push(m.sigmas[m.at]), to.push(m.sigmas[m.at + 1]), cond.push(m.cond);
    const ctx = { denoiser: this.denoiser, cond, guidance: this.guidance, meter: this.meter, stream };
    return eulerStep(ctx, x, from, to);
  }

  /** Joins the newcomers' rows to the state (their tensors stay their callers'). */
  private async admit(stream: NativeStream): Promise<void> {
    if (this.joining.length === 0) return;
    const come = this.joining;
    this.joining = [];
    const parts = [...(this.x ? [this.x] : []), ...come.map((m) => m.x)];
    let x: Tensor;
    try {
      x = await cat(parts, stream);
    } catch (e) {
      come.forEach((m) => this.leave(m, e)); // the newcomers fail; those in the pool go on
      return;
    }
    this.x?.dispose();
    this.x = x;
    this.members.push(...come);
    for (const m of come) {
      m.onAbort = () => {
        if (this.members.every((o) => o.meter.signal?.aborted)) this.cancel?.abort();
      };
      m.meter.signal?.addEventListener('abort', m.onAbort, { once: true });
    }
  }

  /** Charges a member its step, or fails it (cancelled, over budget) and says it leaves. */
  private charged(m: Member): boolean {
    try {
      m.check();
      m.meter.charge(m.cost);
      return true;
    } catch (e) {
      this.leave(m, e);
      return false;
    }
  }

  /** Each member's x̂0 rows it returns: at its mid step, and at its last step other than that one. */
  private async takePredictions(x0: Tensor, stream: NativeStream): Promise<void> {
    let a = 0;
    for (const m of this.members) {
      const n = m.rows;
      const step = m.at++;
      const last = m.to - 1 === m.midAt ? m.to - 2 : m.to - 1;
      if (step === m.midAt) m.x0Mid = await slice(x0, a, a + n, stream);
      else if (step === last) m.x0 = await slice(x0, a, a + n, stream);
      a += n;
    }
  }

  /** Members whose segment ended leave with their rows. */
  private async release(stream: NativeStream): Promise<void> {
    const x = this.x!;
    const staying = this.members.filter((m) => m.at < m.to);
    if (staying.length === this.members.length) return;
    let a = 0;
    for (const m of this.members) {
      const n = m.rows;
      if (m.at === m.to) {
        const rows = await slice(x, a, a + n, stream);
        this.leave(m, null, { x: rows, x0: m.x0, x0Mid: m.x0Mid });
      }
      a += n;
    }
    await this.keepRows(x, staying, stream);
  }

  /** The state cut to `staying`'s rows (they keep their order). */
  private async keepRows(x: Tensor, staying: Member[], stream: NativeStream): Promise<void> {
    const idx: number[] = [];
    let a = 0;
    for (const m of this.members) {
      const n = m.rows;
      if (staying.includes(m)) for (let i = 0; i < n; i++) idx.push(a + i);
      a += n;
    }
    this.members = staying;
    this.x = staying.length > 0 ? await gather(x, idx, stream) : null;
    x.dispose();
  }

  /** A member leaves: with its result, or failed (its predictions freed). */
  private leave(m: Member, e: unknown, r?: SegmentResult): void {
    if (m.left) return; // a failure after it left (the rest of its step) does not concern it
    m.left = true;
    if (m.onAbort) m.meter.signal?.removeEventListener('abort', m.onAbort);
    this.c.lanes.unpark();
    if (r) {
      m.resolve(r);
      return;
    }
    m.x0?.dispose();
    m.x0Mid?.dispose();
    m.reject(e);
  }
}
