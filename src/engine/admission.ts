/**
 * Admission: at most `maxActive` requests run at once and their estimated memory stays under
 * `memoryLimit`; up to `maxQueue` more wait, first come first served; beyond that a request is
 * refused at once with BUSY (HTTP 429). A request that alone would exceed the memory ceiling is
 * refused with OUT_OF_MEMORY, naming the estimate and the limit. A waiting request's AbortSignal
 * takes it out of the queue.
 *
 * Express admission: a request SIZE_CLASS× smaller (in work, its total NFE) than every running one
 * starts at once even when all `maxActive` places are taken, up to ⌈maxActive / 4⌉ such extra
 * requests (memory still counted): otherwise a small request behind full places would wait for a
 * big one to end, which the batcher's smaller-first order cannot help. Express places are not the
 * queue's: a small request that found them full waits in the queue and leaves it for the next
 * express place that frees, and the requests waiting there are not passed over for their places.
 */
import { DiffusionSearchError } from '../errors';
import { SIZE_CLASS } from './rows';

/** A request that asked not to wait (`wait: false`) and found no place now: BUSY, nothing reserved. */
export class NoRoomError extends DiffusionSearchError {
  constructor(message: string) {
    super(message, 'BUSY');
  }
}

export interface AdmissionOptions {
  maxActive: number;
  maxQueue: number;
  /** Bytes; Infinity: no ceiling. */
  memoryLimit: number;
}

interface Waiter {
  bytes: number;
  work: number;
  resolve: (release: () => void) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class Admission {
  active = 0;
  /** Of `active`, those let in by express admission. */
  express = 0;
  reserved = 0;
  /** The work of each running request. */
  private readonly works: number[] = [];
  private readonly waiting: Waiter[] = [];
  private closedWith: string | null = null;

  constructor(readonly options: AdmissionOptions) {}

  get queueDepth(): number {
    return this.waiting.length;
  }

  private fits(bytes: number): boolean {
    return (
      this.active - this.express < this.options.maxActive &&
      (this.active === 0 || this.reserved + bytes <= this.options.memoryLimit)
    );
  }

  private fitsExpress(bytes: number, work: number): boolean {
    return (
      this.express < Math.ceil(this.options.maxActive / 4) &&
      Number.isFinite(work) &&
      this.works.length > 0 &&
      work * SIZE_CLASS <= Math.min(...this.works) &&
      this.reserved + bytes <= this.options.memoryLimit
    );
  }

  /**
   * Waits for a place for a request of `bytes` (estimated) and `work` (its total NFE; default: not
   * small); release() it when the request ends. With `wait` false a request that would wait is
   * refused at once (NoRoomError), so a caller that has elsewhere to send it decides and reserves in
   * one step.
   */
  async admit(bytes: number, signal?: AbortSignal, work = Infinity, wait = true): Promise<() => void> {
    if (this.closedWith) throw new DiffusionSearchError(this.closedWith, 'BUSY');
    if (bytes > this.options.memoryLimit)
      throw new DiffusionSearchError(
        `this request needs about ${mib(bytes)} (samples, states and copies of its searches running at once), ` +
          `above the engine's memory limit of ${mib(this.options.memoryLimit)}: lower n, budget or keep, or raise ` +
          'the limit',
        'OUT_OF_MEMORY',
      );
    if (signal?.aborted)
      throw new DiffusionSearchError('request cancelled before it started', 'ABORTED', { cause: signal.reason });
    if (this.waiting.length === 0 && this.fits(bytes)) return this.take(bytes, work, false);
    if (this.fitsExpress(bytes, work)) return this.take(bytes, work, true);
    if (!wait)
      throw new NoRoomError(
        `no place now: ${this.active} requests running with ${mib(this.reserved)} of ` +
          `${mib(this.options.memoryLimit)} reserved, ${this.waiting.length} waiting`,
      );
    if (this.waiting.length >= this.options.maxQueue)
      throw new DiffusionSearchError(
        `busy: ${this.active} requests running and ${this.waiting.length} waiting (the queue holds ` +
          `${this.options.maxQueue}); retry later`,
        'BUSY',
      );
    return new Promise<() => void>((resolve, reject) => {
      const w: Waiter = { bytes, work, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new DiffusionSearchError('request cancelled while queued', 'ABORTED', { cause: signal.reason }));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiting.push(w);
    });
  }

  private take(bytes: number, work: number, express: boolean): () => void {
    this.active++;
    if (express) this.express++;
    this.reserved += bytes;
    this.works.push(work);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.active--;
      if (express) this.express--;
      this.reserved -= bytes;
      this.works.splice(this.works.indexOf(work), 1);
      this.next();
    };
  }

  /** Lets waiting requests in, in order, while they fit; then small ones that fit an express place. */
  private next(): void {
    while (this.waiting.length && this.fits(this.waiting[0].bytes)) this.leave(0, false);
    for (let i = 0; i < this.waiting.length; i++)
      if (this.fitsExpress(this.waiting[i].bytes, this.waiting[i].work)) this.leave(i--, true);
  }

  private leave(i: number, express: boolean): void {
    const [w] = this.waiting.splice(i, 1);
    if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
    w.resolve(this.take(w.bytes, w.work, express));
  }

  /** Refuses new requests and fails the waiting ones (BUSY with this message). */
  close(message: string): void {
    this.closedWith = message;
    for (const w of this.waiting.splice(0)) {
      if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
      w.reject(new DiffusionSearchError(message, 'BUSY'));
    }
  }
}

const mib = (b: number) => (Number.isFinite(b) ? `${(b / 1024 / 1024).toFixed(1)} MiB` : 'unlimited');
