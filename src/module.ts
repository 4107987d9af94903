/** TorchScript modules loaded by libtorch, with the model card stored inside the archive. */
import { DiffusionSearchError } from './errors';
import { checkArchive } from './io/zip-check';
import { modelFile } from './models/shipped';
import { native, type ModuleInput, type ModuleOutput, type NativeModule, type NativeStream } from './native';

export type ModelCardJson = Record<string, unknown>;

export interface LoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** The stream that loads the module; the default stream when omitted. */
  stream?: NativeStream;
}

export class TorchModule {
  /** The parsed model.json of the archive, or null when it has none. */
  readonly card: ModelCardJson | null;

  private constructor(private readonly handle: NativeModule) {
    this.card = parseCard(handle);
  }

  static async load(file: string, options: LoadOptions = {}): Promise<TorchModule> {
    if (typeof file !== 'string' || file.length === 0)
      throw new DiffusionSearchError('loadModule(path): path must be a non-empty string', 'ARGUMENT');
    // A shipped name ('gmm2d') or package-relative path ('models/gmm2d.pt') loads the installed file.
    const resolved = modelFile(file);
    await checkArchive(resolved);
    const handle = await native().loadModule(resolved, { device: options.device }, options.stream);
    return new TorchModule(handle);
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

  /** Runs `method` on `stream` (default stream when omitted) under torch::InferenceMode. */
  call(method: string, inputs: ModuleInput[], stream?: NativeStream): Promise<ModuleOutput> {
    return this.handle.call(method, inputs, stream);
  }

  forward(...inputs: ModuleInput[]): Promise<ModuleOutput> {
    return this.handle.call('forward', inputs);
  }

  dispose(): void {
    this.handle.dispose();
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
