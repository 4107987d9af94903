/**
 * The models shipped with the package, by name. Anything that takes a model file also takes a
 * shipped name ('gmm2d') or a shipped file's package-relative path ('models/gmm2d.pt'), so code
 * written in this repository runs unchanged in a project that installed the package.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiffusionSearchError } from '../errors';
import { packageRoot } from '../native';

export interface ShippedModel {
  name: string;
  file: string;
  kind: 'denoiser' | 'verifier' | 'eval' | 'tpm' | 'text_encoder' | 'decoder';
  /** Default verifier names of a denoiser. */
  verifiers?: string[];
}

export const shipped: ShippedModel[] = [
  { name: 'fashion-flow', file: 'models/fashion-flow.pt', kind: 'denoiser', verifiers: ['classifier'] },
  // A quarter of fashion-flow's MACs per NFE (channels 16/32/64): the small model of docs/science.md.
  {
    name: 'fashion-flow-small',
    file: 'models/fashion-flow-small.pt',
    kind: 'denoiser',
    verifiers: ['classifier'],
  },
  { name: 'gmm2d', file: 'models/gmm2d.pt', kind: 'denoiser', verifiers: ['gmm2d-reward'] },
  { name: 'vp2d', file: 'models/vp2d.pt', kind: 'denoiser', verifiers: ['gmm2d-reward'] },
  { name: 'classifier', file: 'models/fashion-classifier.pt', kind: 'verifier' },
  { name: 'realism', file: 'models/fashion-realism.pt', kind: 'verifier' },
  { name: 'detail', file: 'models/fashion-detail.pt', kind: 'verifier' },
  { name: 'gmm2d-reward', file: 'models/gmm2d-reward.pt', kind: 'verifier' },
  { name: 'oracle', file: 'eval/fashion-eval.pt', kind: 'eval' },
  { name: 'tpm', file: 'models/fashion-tpm.pt', kind: 'tpm' },
  // The text-to-image stack (scripts/train/t2i/): latent flow, its text encoder, decoder and prompt-aware verifier.
  { name: 'fashion-t2i', file: 'models/fashion-t2i.pt', kind: 'denoiser', verifiers: ['fashion-clip'] },
  { name: 'fashion-text', file: 'models/fashion-text.pt', kind: 'text_encoder' },
  { name: 'fashion-ae', file: 'models/fashion-ae.pt', kind: 'decoder' },
  { name: 'fashion-clip', file: 'models/fashion-clip.pt', kind: 'verifier' },
  // The video stack (scripts/train/video/): moving Fashion-MNIST clips [8, 1, 32, 32] from prompts.
  {
    name: 'fashion-video',
    file: 'models/fashion-video.pt',
    kind: 'denoiser',
    verifiers: ['video-class', 'video-motion'],
  },
  { name: 'fashion-video-text', file: 'models/fashion-video-text.pt', kind: 'text_encoder' },
  { name: 'video-class', file: 'models/video-class.pt', kind: 'verifier' },
  { name: 'video-motion', file: 'models/video-motion.pt', kind: 'verifier' },
  { name: 'video-consistency', file: 'models/video-consistency.pt', kind: 'verifier' },
  { name: 'video-class-eval', file: 'eval/video-class-eval.pt', kind: 'eval' },
  { name: 'video-direction-eval', file: 'eval/video-direction-eval.pt', kind: 'eval' },
];

export const DEFAULT_MODEL = 'fashion-flow';

/**
 * A shipped name, a path that exists, or a shipped file's path relative to the package
 * ('models/gmm2d.pt' from any working directory); the file and the shipped entry if any.
 */
export function resolveModel(nameOrPath: string): { file: string; shipped?: ShippedModel } {
  if (typeof nameOrPath !== 'string' || nameOrPath.length === 0)
    throw new DiffusionSearchError('a model must be a shipped name or a non-empty path', 'ARGUMENT');
  const s = findShipped(nameOrPath);
  if (s) {
    const file = path.join(packageRoot, s.file);
    if (!fs.existsSync(file))
      throw new DiffusionSearchError(
        `the shipped model '${s.name}' is missing (${file}); reinstall the package or train it (scripts/train/)`,
        'MODEL_LOAD',
      );
    return { file, shipped: s };
  }
  if (fs.existsSync(nameOrPath)) return { file: path.resolve(nameOrPath) };
  throw new DiffusionSearchError(
    `unknown model '${nameOrPath}': no such file, and not a shipped model (${shipped.map((m) => m.name).join(', ')})`,
    'ARGUMENT',
  );
}

/** The shipped entry a name or package-relative path means; a file that exists as given wins. */
export function findShipped(nameOrPath: string): ShippedModel | undefined {
  const byName = shipped.find((m) => m.name === nameOrPath);
  if (byName || fs.existsSync(nameOrPath)) return byName;
  const norm = path.normalize(nameOrPath);
  return shipped.find((m) => m.file === norm);
}

/** The file to load for a name or path: a shipped model's installed file, else the path as given. */
export function modelFile(nameOrPath: string): string {
  const s = findShipped(nameOrPath);
  return s ? path.join(packageRoot, s.file) : nameOrPath;
}

/**
 * A model another model's card names (its decoder, its text encoder): a shipped name, a path, or
 * a file beside the naming model's own file.
 */
export function modelFileBeside(name: string, ownerFile: string): string {
  const file = modelFile(name);
  if (fs.existsSync(file)) return file;
  const beside = path.join(path.dirname(ownerFile), name);
  return fs.existsSync(beside) ? beside : file;
}
