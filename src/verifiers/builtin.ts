/**
 * The one table from a verifier's name to how it is built over its TorchScript module:
 * loadVerifier (src/models/registry) and the engine's model cache (src/engine/models) both read
 * it. A name not in the table is a verifier module of its own (TorchScriptVerifier).
 */
import type { TorchModule } from '../module';
import { ClassLogitVerifier, SelfSupervisedVerifier, TorchScriptVerifier } from './torchscript';

interface Builtin {
  /** The shipped module it runs on. */
  module: string;
  build: (m: TorchModule, maxBatch?: number) => ClassLogitVerifier | SelfSupervisedVerifier;
}

export const BUILTIN_VERIFIERS: Readonly<Record<string, Builtin>> = {
  /** Log-softmax of the class, from the fashion classifier. */
  classifier: { module: 'classifier', build: (m, mb) => new ClassLogitVerifier(m, 'classifier', mb) },
  /** Self-supervised: feature cosine between the x̂0 at σ ≈ 0.4 and the sample, on the classifier's features. */
  self: { module: 'classifier', build: (m, mb) => new SelfSupervisedVerifier(m, 'self', mb) },
};

/** The model (shipped name or file) a verifier name loads. */
export function verifierModule(name: string): string {
  return BUILTIN_VERIFIERS[name]?.module ?? name;
}

/** The verifier `name` over its loaded module. */
export function buildVerifier(
  name: string,
  m: TorchModule,
  maxBatch?: number,
): ClassLogitVerifier | SelfSupervisedVerifier | TorchScriptVerifier {
  return BUILTIN_VERIFIERS[name]?.build(m, maxBatch) ?? new TorchScriptVerifier(m, name, maxBatch);
}
