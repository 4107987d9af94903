/** The models shipped with the package, by name, and the verifiers that go with them. */
import fs from 'node:fs';
import path from 'node:path';
import { DiffusionSearchError } from '../errors';
import { loadModule } from '../module';
import { packageRoot } from '../native';
import { ClassLogitVerifier, SelfSupervisedVerifier, TorchScriptVerifier } from '../verifiers/torchscript';
import { EnsembleVerifier } from '../verifiers/ensemble';
import type { Verifier } from '../verifiers/verifier';

export interface ShippedModel {
  name: string;
  file: string;
  kind: 'denoiser' | 'verifier' | 'eval' | 'tpm';
  /** Default verifier names of a denoiser. */
  verifiers?: string[];
}

export const shipped: ShippedModel[] = [
  { name: 'fashion-flow', file: 'models/fashion-flow.pt', kind: 'denoiser', verifiers: ['classifier'] },
  { name: 'gmm2d', file: 'models/gmm2d.pt', kind: 'denoiser', verifiers: ['gmm2d-reward'] },
  { name: 'classifier', file: 'models/fashion-classifier.pt', kind: 'verifier' },
  { name: 'realism', file: 'models/fashion-realism.pt', kind: 'verifier' },
  { name: 'detail', file: 'models/fashion-detail.pt', kind: 'verifier' },
  { name: 'gmm2d-reward', file: 'models/gmm2d-reward.pt', kind: 'verifier' },
  { name: 'oracle', file: 'eval/fashion-eval.pt', kind: 'eval' },
  { name: 'tpm', file: 'models/fashion-tpm.pt', kind: 'tpm' },
];

export const DEFAULT_MODEL = 'fashion-flow';

/** A shipped name or a path to a TorchScript file. */
export function resolveModel(nameOrPath: string): { file: string; shipped?: ShippedModel } {
  const s = shipped.find((m) => m.name === nameOrPath);
  if (s) {
    const file = path.join(packageRoot, s.file);
    if (!fs.existsSync(file))
      throw new DiffusionSearchError(`the shipped model '${s.name}' is missing (${file}); reinstall the package or train it (scripts/)`, 'MODEL_LOAD');
    return { file, shipped: s };
  }
  if (fs.existsSync(nameOrPath)) return { file: path.resolve(nameOrPath) };
  throw new DiffusionSearchError(
    `unknown model '${nameOrPath}': use one of ${shipped.map((m) => m.name).join(', ')} or a path to a TorchScript file`,
    'ARGUMENT',
  );
}

/**
 * A verifier by name: 'classifier' (log-softmax of the class), 'realism', 'detail', 'self' (self-supervised
 * feature cosine on the classifier's features), 'oracle' (the eval/ classifier: privileged),
 * 'gmm2d-reward', or a path to a TorchScript verifier. Several names make a rank ensemble.
 */
export async function loadVerifier(names: string[], o: { device?: string; maxBatch?: number } = {}): Promise<Verifier> {
  const one = async (name: string): Promise<Verifier> => {
    if (name === 'self') {
      const { file } = resolveModel('classifier');
      return new SelfSupervisedVerifier(await loadModule(file, { device: o.device }), 'self', o.maxBatch);
    }
    if (name === 'classifier') {
      const { file } = resolveModel('classifier');
      return new ClassLogitVerifier(await loadModule(file, { device: o.device }), 'classifier', o.maxBatch);
    }
    const { file } = resolveModel(name);
    return TorchScriptVerifier.load(file, { device: o.device, name, maxBatch: o.maxBatch });
  };
  if (names.length === 0) throw new DiffusionSearchError('no verifier given', 'ARGUMENT');
  const vs = await Promise.all(names.map(one));
  return vs.length === 1 ? vs[0] : new EnsembleVerifier(vs);
}
