/** TorchScript modules loaded by libtorch, with the model card stored inside the archive. */
import { DiffusionSearchError } from './errors';
import { checkArchive } from './io/zip-check';
import { modelFile } from './models/shipped';
import { SmallCallVariant, type ModuleOptimization } from './module-variant';
import {
  native,
  type ModuleInput,
  type ModuleOutput,
  type NativeCallOptions,
  type NativeModule,
  type NativeStream,
  type NativeTensor,
} from './native';
import { checkPrecision, type Precision } from './precision';

export type ModelCardJson = Record<string, unknown>;

export interface LoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** The stream that loads the module; the default stream when omitted. */
  stream?: NativeStream;
  /** 'fp32' (default) or 'bf16' (CPU autocast; CPUs with AVX512_BF16 or AMX only): see ./precision. */
  precision?: Precision;
  /**
   * Calls of fewer rows than this run a frozen, inference-optimised copy, checked against the
   * module on each method's first such call (./module-variant); 0 or omitted: none.
   */
  optimizeBelowRows?: number;
  /** Most relative difference the copy may show on that check (default 1e-4). */
  optimizeTolerance?: number;
  /** The most intra-op threads a call to the copy uses on CPU (default: its stream's count). */
  optimizeThreads?: number;
  /**
   * On CPU, calls of at least twice this many rows with more than one thread run as row chunks
   * side by side, one thread each, joined back (every input a tensor of those rows); 0 or omitted: never.
   */
  chunkRows?: number;
}

export class TorchModule {
  /** The parsed model.json of the archive, or null when it has none. */
  readonly card: ModelCardJson | null;

  /** The precision of its calls. */
  readonly precision: Precision;
  private readonly small: SmallCallVariant | null;
  private readonly callOptions: NativeCallOptions | undefined;

  private constructor(
    private readonly handle: NativeModule,
    precision: Precision = 'fp32',
    small: SmallCallVariant | null = null,
    chunkRows = 0,
  ) {
    this.card = parseCard(handle);
    this.precision = precision;
    const o = { ...(precision === 'fp32' ? {} : { precision }), ...(chunkRows ? { chunkRows } : {}) };
    this.callOptions = Object.keys(o).length ? o : undefined;
    this.small = small;
  }

  static async load(file: string, options: LoadOptions = {}): Promise<TorchModule> {
    if (typeof file !== 'string' || file.length === 0)
      throw new DiffusionSearchError('loadModule(path): path must be a non-empty string', 'ARGUMENT');
    // A shipped name ('gmm2d') or package-relative path ('models/gmm2d.pt') loads the installed file.
    const resolved = modelFile(file);
    await checkArchive(resolved);
    const precision = options.precision ?? 'fp32';
    checkPrecision(precision, options.device);
    if (options.chunkRows !== undefined && !(Number.isInteger(options.chunkRows) && options.chunkRows >= 0))
      throw new DiffusionSearchError('loadModule: chunkRows must be a non-negative integer', 'ARGUMENT');
    const handle = await native().loadModule(resolved, { device: options.device }, options.stream);
    const below = options.optimizeBelowRows ?? 0;
    const small = below > 0 ? await smallCallVariant(handle, below, options) : null;
    return new TorchModule(handle, precision, small, options.chunkRows);
  }

  /** The optimised copy for small forwards and its check, or null when none was asked for. */
  get optimization(): ModuleOptimization | null {
    return this.small ? { ...this.small.report } : null;
  }

  /** Whether its small calls go to the optimised copy (or will, once checked). */
  get optimizesSmallCalls(): boolean {
    return this.small !== null && this.small.report.state !== 'off';
  }

  get path(): string {
    return this.handle.path;
  }
  get device(): string {
    return this.handle.device;
  }
  get methods(): string[] {
    return this.handle.methods;
  }
  hasMethod(name: string): boolean {
    return this.handle.methods.includes(name);
  }
  /** The TorchScript schema of a method, e.g. `forward(__torch__.M self, Tensor x) -> Tensor`. */
  schema(method = 'forward'): string {
    return this.handle.schema(method);
  }

  /**
   * Runs `method` on `stream` (default stream when omitted) under torch::InferenceMode; `threads`:
   * at most that many intra-op threads for this call.
   */
  call(method: string, inputs: ModuleInput[], stream?: NativeStream, threads?: number): Promise<ModuleOutput> {
    if (this.small?.wants(method, inputs))
      return this.small.call(method, inputs, stream, (h, m, i, s, o) => h.call(m, i, s, o));
    return this.handle.call(method, inputs, stream, this.options(threads));
  }

  /** The call options, with a cap on threads when asked. */
  private options(threads: number | undefined): NativeCallOptions | undefined {
    return threads ? { ...this.callOptions, threads } : this.callOptions;
  }

  /**
   * One call of `method` on several callers' rows, joined and cut back in one native job: the
   * pieces' rows [start, end) of their tensor inputs, one output per piece. Null when the call
   * would be a method's first on the small-call copy, whose check runs through call().
   */
  callJoined(
    method: string,
    pieces: Array<[inputs: NativeTensor[], start: number, end: number]>,
    stream?: NativeStream,
    threads?: number,
  ): Promise<ModuleOutput[]> | null {
    const rows = pieces.reduce((n, [, start, end]) => n + end - start, 0);
    const copy = this.small?.ready(method, rows);
    if (copy) return copy.callJoined(method, pieces, stream, this.small!.copyOptions);
    if (this.small?.checks(method, rows)) return null;
    return this.handle.callJoined(method, pieces, stream, this.options(threads));
  }

  forward(...inputs: ModuleInput[]): Promise<ModuleOutput> {
    return this.call('forward', inputs);
  }

  dispose(): void {
    this.small?.dispose();
    this.handle.dispose();
  }
}

async function smallCallVariant(handle: NativeModule, belowRows: number, o: LoadOptions): Promise<SmallCallVariant> {
  const v = { belowRows, tolerance: o.optimizeTolerance ?? 1e-4, threads: o.optimizeThreads ?? null };
  try {
    return new SmallCallVariant(handle, await handle.optimize({ inference: true }, o.stream), v);
  } catch (e) {
    return new SmallCallVariant(handle, null, v, (e as Error).message);
  }
}

function parseCard(handle: NativeModule): ModelCardJson | null {
  const text = handle.card;
  if (text === null) return null;
  try {
    const card = JSON.parse(text) as unknown;
    if (typeof card !== 'object' || card === null || Array.isArray(card)) throw new Error('not a JSON object');
    return card as ModelCardJson;
  } catch (e) {
    throw new DiffusionSearchError(
      `the model card (model.json) inside '${handle.path}' is not a JSON object: ${(e as Error).message}`,
      'MODEL_CARD',
      { cause: e },
    );
  }
}

export function loadModule(file: string, options: LoadOptions = {}): Promise<TorchModule> {
  return TorchModule.load(file, options);
}
