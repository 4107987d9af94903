/**
 * The models an engine holds: each file loaded once per device, shared by every request, reference
 * counted. A request acquires what it uses and releases it when it ends; an unused model stays
 * loaded (a service pays the load once) until `evict()` or the engine closes. Every module an
 * engine loads gets a batcher (./batcher), so all searches' calls of it can merge.
 */
import { DiffusionSearchError } from '../errors';
import { loadModule, type TorchModule } from '../module';
import { inferenceLoad } from '../models/inference-load';
import type { Precision } from '../precision';
import { Denoiser } from '../models/denoiser';
import path from 'node:path';
import { resolveModel, shipped } from '../models/shipped';
import { loadTextEncoder } from '../models/prompting';
import type { TextEncoder } from '../models/text-encoder';
import { TimePredictionModule } from '../samplers/adaptive';
import { buildVerifier, verifierModule } from '../verifiers/builtin';
import { HttpVerifier, type HttpVerifierOptions } from '../verifiers/http';
import type { Verifier } from '../verifiers/verifier';
import { Evaluator } from '../eval/metrics';
import { ModuleBatcher, type BatcherOptions, type LaneRegistry } from './batcher';
import type { EngineMetrics, ModelKind } from './metrics';

interface Entry<T> {
  key: string;
  value: Promise<T>;
  refs: number;
  dispose: (v: T) => void;
  batchers: ModuleBatcher[];
}

/** A model a request holds; release() when done. */
export interface Held<T> {
  value: T;
  release(): void;
}

/**
 * A model file as clients may see it (metrics labels, errors, a service's reports): a shipped
 * model's name, else the file's name without its directory (which is the server's business).
 */
export function modelName(file: string): string {
  const s = shipped.find((m) => {
    try {
      return resolveModel(m.name).file === file;
    } catch {
      return false; // a shipped model missing on disk is no match
    }
  });
  return s?.name ?? path.basename(file);
}

export class ModelCache {
  private readonly entries = new Map<string, Entry<unknown>>();
  private closed = false;
  /** Settings of the remote verifiers requests name by URL (a service sets them from its flags). */
  remoteVerifier: HttpVerifierOptions = {};

  private readonly device: string;
  private readonly precision: Precision;

  constructor(
    place: { device: string; precision: Precision },
    private readonly batching: BatcherOptions,
    private readonly lanes: LaneRegistry,
    private readonly metrics: EngineMetrics,
  ) {
    this.device = place.device;
    this.precision = place.precision;
  }

  /** Models held (loaded or loading). */
  get size(): number {
    return this.entries.size;
  }

  /** Keys of the models held and their reference counts. */
  list(): Array<{ key: string; refs: number }> {
    return [...this.entries.values()].map((e) => ({ key: e.key, refs: e.refs }));
  }

  /** Batchers of every module held, for the queue metrics. */
  batchers(): ModuleBatcher[] {
    return [...this.entries.values()].flatMap((e) => e.batchers);
  }

  /** The value for `key`, loading it on first use; failed loads are forgotten (the next request retries). */
  private async acquire<T>(
    key: string,
    load: (batchers: ModuleBatcher[]) => Promise<T>,
    dispose: (v: T) => void,
  ): Promise<Held<T>> {
    if (this.closed) throw new DiffusionSearchError('the engine is closed', 'BUSY');
    let e = this.entries.get(key) as Entry<T> | undefined;
    if (!e) {
      const batchers: ModuleBatcher[] = [];
      e = { key, value: load(batchers), refs: 0, dispose, batchers };
      this.entries.set(key, e as Entry<unknown>);
      const entry = e;
      entry.value.catch(() => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      });
    }
    e.refs++;
    let value: T;
    try {
      value = await e.value;
    } catch (err) {
      e.refs--;
      throw err;
    }
    let released = false;
    const entry = e;
    return {
      value,
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
      },
    };
  }

  /** A module loaded with a batcher; `wrap` gets the batched module. */
  private async module(file: string, kind: ModelKind, batchers: ModuleBatcher[]): Promise<TorchModule> {
    const m = await loadModule(file, inferenceLoad(this.device));
    this.metrics.loads++;
    return this.batched(m, kind, batchers);
  }

  private batched(m: TorchModule, kind: ModelKind, batchers: ModuleBatcher[]): TorchModule {
    const b = new ModuleBatcher(m, kind, this.batching, this.lanes, this.metrics, modelName(m.path));
    batchers.push(b);
    return b.wrap();
  }

  /** A denoiser by resolved file (its decoder with it); rows per chunk = the engine's maxBatch. */
  denoiser(file: string): Promise<Held<Denoiser>> {
    return this.acquire(
      `denoiser:${file}`,
      async (batchers) => {
        const d = await Denoiser.load(file, {
          device: this.device,
          precision: this.precision,
          maxBatch: this.batching.maxBatch,
          wrap: (m) => this.batched(m, 'denoiser', batchers),
        });
        this.metrics.loads += 1 + (d.decoder ? 1 : 0);
        return d;
      },
      (d) => d.dispose(),
    );
  }

  /** The text encoder a denoiser's card names (one per denoiser). */
  textEncoder(denoiser: Denoiser, file: string): Promise<Held<TextEncoder>> {
    return this.acquire(
      `text-encoder:${file}`,
      async () => {
        const enc = await loadTextEncoder(denoiser, { device: this.device });
        this.metrics.loads++;
        return enc;
      },
      (e) => e.dispose(),
    );
  }

  /** The Time Prediction Module of adaptive schedules. */
  tpm(name: string): Promise<Held<TimePredictionModule>> {
    const { file } = resolveModel(name);
    return this.acquire(
      `tpm:${file}`,
      async (b) => new TimePredictionModule(await this.module(file, 'tpm', b)),
      (t) => t.dispose(),
    );
  }

  /** The eval/ classifier (judge of fashion-flow samples). */
  evaluator(): Promise<Held<Evaluator>> {
    return this.acquire(
      'eval',
      async () => {
        const ev = await Evaluator.load(undefined, this.device);
        this.metrics.loads++;
        return ev;
      },
      (ev) => ev.module.dispose(),
    );
  }

  /**
   * One verifier by name, as loadVerifier (src/models/registry) builds it, over a batched module.
   * URLs and Verifier objects are not cached (they hold no model).
   */
  async verifier(name: string | Verifier, maxRows: number): Promise<Held<Verifier>> {
    if (typeof name !== 'string') return { value: name, release: () => {} };
    if (/^https?:\/\//.test(name)) {
      const o = this.remoteVerifier;
      return { value: new HttpVerifier(name, { ...o, maxRows: o.maxRows ?? maxRows }), release: () => {} };
    }
    const { file } = resolveModel(verifierModule(name));
    const mb = this.batching.maxBatch;
    return this.acquire(
      `verifier:${name}:${file}`,
      async (b) => buildVerifier(name, await this.module(file, 'verifier', b), mb),
      (v) => v.module.dispose(),
    );
  }

  /** Frees the models no request holds now. */
  async evict(): Promise<number> {
    let n = 0;
    for (const [key, e] of [...this.entries]) {
      if (e.refs > 0) continue;
      this.entries.delete(key);
      n++;
      await this.free(e);
    }
    return n;
  }

  private async free(e: Entry<unknown>): Promise<void> {
    await Promise.all(e.batchers.map((b) => b.close()));
    try {
      e.dispose(await e.value);
    } catch {
      // a failed load holds nothing
    }
  }

  /** Frees everything (the engine is closing). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => this.free(e)));
  }
}
