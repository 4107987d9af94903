/**
 * Conditions as named tensors. A denoiser's card may declare its condition inputs
 *   "conditions": [{ "name": "text", "dtype": "float32", "shape": [8, 64] }, ...]
 * (shape without the batch dimension); its forward is then forward(x, sigma, ...those tensors in
 * card order). Without "conditions" the model takes one int64 class id per row.
 *
 * Rows carry a condition id, as they carried a class id: the denoiser keeps a table from id to
 * one row of each condition tensor (registered by a search for its prompt, released at its end)
 * and builds each batch's inputs by gathering rows. So every sampler, algorithm and the
 * adaptive sampler slice and gather conditions with their samples, unchanged.
 */
import { DiffusionSearchError } from '../errors';
import type { DType, NativeStream, NativeTensor } from '../native';
import { cat, gather } from '../tensor-ops';
import { TensorScope } from '../tensor-scope';

export interface ConditionSpec {
  name: string;
  dtype: DType;
  /** Shape of one row (without N). */
  shape: number[];
}

export type ConditionTensors = Record<string, NativeTensor>;

/** The id of the unconditional row (guidance) in a condition table. */
export const NULL_CONDITION = -1;

const DTYPES: DType[] = ['float32', 'float64', 'int32', 'int64', 'uint8', 'bool', 'float16', 'bfloat16'];

/** The card's "conditions", checked; undefined for a class-conditional card. */
export function conditionSpecs(card: Record<string, unknown>, file: string): ConditionSpec[] | undefined {
  const c = card.conditions;
  if (c === undefined || c === null) return undefined;
  const fail = (what: string): never => {
    throw new DiffusionSearchError(`model card of '${file}': "conditions" ${what}`, 'MODEL_CARD');
  };
  if (!Array.isArray(c) || c.length === 0) fail('must be a non-empty array of { name, dtype, shape }');
  const seen = new Set<string>();
  return (c as unknown[]).map((s, i) => {
    const o = s as Partial<ConditionSpec>;
    if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || !o.name) fail(`[${i}] needs a "name"`);
    if (seen.has(o.name!)) fail(`names '${o.name}' twice`);
    seen.add(o.name!);
    if (!DTYPES.includes(o.dtype as DType)) fail(`[${i}] ('${o.name}'): "dtype" must be one of ${DTYPES.join(', ')}`);
    if (!Array.isArray(o.shape) || !o.shape.every((d) => Number.isInteger(d) && d > 0))
      fail(`[${i}] ('${o.name}'): "shape" must be positive integers (without N)`);
    return { name: o.name!, dtype: o.dtype as DType, shape: o.shape! };
  });
}

/** SHAPE/ARGUMENT errors unless `t` holds every declared tensor with `rows` rows of the declared shape and dtype. */
export function checkCondition(specs: ConditionSpec[], t: ConditionTensors, rows: number, owner: string): void {
  if (typeof t !== 'object' || t === null)
    throw new DiffusionSearchError(`${owner}: a condition must be an object of named tensors`, 'ARGUMENT');
  const extra = Object.keys(t).filter((k) => !specs.some((s) => s.name === k));
  if (extra.length)
    throw new DiffusionSearchError(
      `${owner}: unknown condition tensor(s) ${extra.map((k) => `'${k}'`).join(', ')}; the card declares ` +
        `${specs.map((s) => s.name).join(', ')}`,
      'ARGUMENT',
    );
  for (const s of specs) {
    const v = t[s.name];
    if (!v)
      throw new DiffusionSearchError(
        `${owner}: condition '${s.name}' is missing (${s.dtype}[N, ${s.shape}])`,
        'ARGUMENT',
      );
    if (v.disposed) throw new DiffusionSearchError(`${owner}: condition '${s.name}' was disposed`, 'DISPOSED');
    if (v.dtype !== s.dtype || v.shape.join() !== [rows, ...s.shape].join())
      throw new DiffusionSearchError(
        `${owner}: condition '${s.name}' is ${v.dtype}[${v.shape}], the card declares ${s.dtype}[${rows}, ${s.shape}]`,
        'SHAPE',
      );
  }
}

/** One-row conditions by id; batches gathered from them. The table owns what it is given. */
export class ConditionTable {
  private readonly rows = new Map<number, ConditionTensors>();
  private nextId = 0;

  constructor(
    readonly specs: ConditionSpec[],
    private readonly owner: string,
  ) {}

  /** Keeps one condition (each tensor [1, ...shape]); its id for the rows that use it. */
  register(t: ConditionTensors, id = this.nextId++): number {
    checkCondition(this.specs, t, 1, this.owner);
    this.release(id);
    this.rows.set(id, t);
    return id;
  }

  has(id: number): boolean {
    return this.rows.has(id);
  }

  release(id: number): void {
    const t = this.rows.get(id);
    if (!t) return;
    for (const v of Object.values(t)) v.dispose();
    this.rows.delete(id);
  }

  /** The condition tensors of rows with these ids, in card order: each [ids.length, ...shape]. */
  async inputs(ids: ArrayLike<number>, stream?: NativeStream): Promise<NativeTensor[]> {
    const distinct = [...new Set(Array.from(ids))];
    for (const id of distinct)
      if (!this.rows.has(id))
        throw new DiffusionSearchError(
          id === NULL_CONDITION
            ? `${this.owner}: no unconditional branch for guidance (see the card's "unconditional")`
            : `${this.owner}: no condition with id ${id} (released, or never registered)`,
          'ARGUMENT',
        );
    const at = new Map(distinct.map((id, i) => [id, i]));
    const idx = Array.from(ids, (id) => at.get(id)!);
    using s = new TensorScope();
    const out: NativeTensor[] = [];
    for (const spec of this.specs) {
      using step = new TensorScope();
      const parts = distinct.map((id) => this.rows.get(id)![spec.name]);
      const stacked = parts.length === 1 ? parts[0] : await step.track(cat(parts, stream));
      out.push(await s.track(gather(stacked, idx, stream)));
    }
    return s.keep(out);
  }

  dispose(): void {
    for (const id of [...this.rows.keys()]) this.release(id);
  }
}
