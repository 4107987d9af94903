/**
 * Tensors freed by scope. A TensorScope owns what it tracks and frees all of it when it ends — on
 * return and on a throw alike — except what keep() hands out. With `using s = new TensorScope()`
 * a step allocates freely and says only what leaves the block:
 *
 *   using s = new TensorScope();
 *   const { x0, eps } = s.track(await denoiser.predict(x, sigma, ...));
 *   const v = await s.track(axpby(x0, eps, a, b));
 *   return s.keep(await ops.eulerStep(x, v, from, to));   // the caller owns the result
 *
 * Native tensors also have [Symbol.dispose] (see native.ts), so a single temporary may be
 * `using t = await op(...)`.
 */

/** Anything with a dispose() (a tensor, a module's output), or nothing. */
export type Owned = { dispose(): void } | null | undefined;
type Plain = string | number | boolean | bigint | symbol | null | undefined | ArrayLike<unknown>;
/**
 * What track() and keep() take: one owned value, an array of them, or an object whose values are
 * owned values, arrays of them or plain data ({ x0, eps }, { x, ids }).
 */
export type Trackable<T> = Owned | readonly Owned[] | { [K in keyof T]: Owned | Plain };

type Resource = { dispose(): void };

const isResource = (v: unknown): v is Resource =>
  typeof v === 'object' && v !== null && typeof (v as Resource).dispose === 'function';

/** The resources in v: itself, an array's elements, or an object's values and their arrays' elements. */
function resources(v: unknown, depth = 0): Resource[] {
  if (isResource(v)) return [v];
  if (Array.isArray(v)) return v.filter(isResource);
  if (depth > 0 || typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return [];
  return Object.values(v).flatMap((x) => resources(x, 1));
}

export class TensorScope implements Disposable {
  private readonly held = new Set<Resource>();
  private closed = false;

  /** Owns v (or, given a promise, what it resolves to) until the scope ends; returns it. */
  track<T extends Trackable<T>>(v: Promise<T>): Promise<T>;
  track<T extends Trackable<T>>(v: T): T;
  track<T>(v: T | Promise<T>): T | Promise<T> {
    if (v instanceof Promise) return v.then((r) => this.track(r as Trackable<T>) as T);
    for (const r of resources(v)) this.held.add(r);
    // A value that arrives after the scope ended (a promise left running by a throw) is freed at once.
    if (this.closed) this.close();
    return v;
  }

  /** Hands v out: the scope no longer frees it (the caller, or another scope, owns it now). */
  keep<T extends Trackable<T>>(v: T): T {
    for (const r of resources(v)) this.held.delete(r);
    return v;
  }

  /**
   * The value carried from step to step: frees `old` now if this scope holds it (an input the
   * scope never owned is left alone), and owns `next` instead.
   */
  replace<T extends Owned>(old: Owned, next: T): T {
    if (old && old !== next && this.held.delete(old)) old.dispose();
    return this.track(next);
  }

  /** Whether the scope frees v when it ends. */
  holds(v: Owned): boolean {
    return !!v && this.held.has(v);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Frees everything tracked and not kept (safe to call twice). */
  close(): void {
    this.closed = true;
    const all = [...this.held];
    this.held.clear();
    for (const r of all) r.dispose();
  }
}
