/** Verifiers by name (the shipped ones, 'self', or files); the shipped list lives in ./shipped. */
import { DiffusionSearchError } from '../errors';
import { loadModule } from '../module';
import { inferenceLoad } from './inference-load';
import { resolveModel } from './shipped';
import { buildVerifier, verifierModule } from '../verifiers/builtin';
import { EnsembleVerifier } from '../verifiers/ensemble';
import { HttpVerifier, type HttpVerifierOptions } from '../verifiers/http';
import type { Verifier } from '../verifiers/verifier';

export { shipped, DEFAULT_MODEL, resolveModel, type ShippedModel } from './shipped';

/**
 * A verifier by name: 'classifier' (log-softmax of the class), 'realism', 'detail', 'self' (self-supervised
 * feature cosine on the classifier's features), 'oracle' (the eval/ classifier: privileged),
 * 'gmm2d-reward', a path to a TorchScript verifier, or an http(s):// URL of a remote verifier
 * (HttpVerifier). Several names make a rank ensemble.
 */
export async function loadVerifier(
  names: Array<string | Verifier>,
  o: { device?: string; maxBatch?: number; remote?: HttpVerifierOptions } = {},
): Promise<Verifier> {
  const one = async (name: string | Verifier): Promise<Verifier> => {
    if (typeof name !== 'string') return name; // a Verifier object (FunctionVerifier, HttpVerifier, ...)
    if (/^https?:\/\//.test(name))
      return new HttpVerifier(name, { ...o.remote, maxRows: o.remote?.maxRows ?? o.maxBatch });
    const { file } = resolveModel(verifierModule(name));
    return buildVerifier(name, await loadModule(file, inferenceLoad(o.device)), o.maxBatch);
  };
  if (!Array.isArray(names))
    throw new DiffusionSearchError(
      `loadVerifier takes a list of verifier names, got ${JSON.stringify(names)}: write ` +
        `loadVerifier([${JSON.stringify(names)}])`,
      'ARGUMENT',
    );
  if (names.length === 0) throw new DiffusionSearchError('no verifier given', 'ARGUMENT');
  const vs = await Promise.all(names.map(one));
  return vs.length === 1 ? vs[0] : new EnsembleVerifier(vs);
}
