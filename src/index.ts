export { DiffusionSearchError, isDiffusionSearchError, type ErrorCode } from './errors';
export { native, type DType, type TypedArray, type ModuleInput, type ModuleOutput } from './native';
export { tensor, disposeAll, type Tensor } from './tensor';
export { TensorScope } from './tensor-scope';
export { createStream, setNumThreads, type Stream } from './stream';
export { loadModule, TorchModule, type LoadOptions, type ModelCardJson } from './module';
export { info, packageVersion, type Info } from './info';
export * as ops from './ops';
export * from './search';
export { Denoiser, type NfeMeter } from './models/denoiser';
export { validateCard, type ModelCard } from './models/card';
export { shipped, resolveModel, DEFAULT_MODEL, type ShippedModel } from './models/shipped';
export { loadVerifier } from './models/registry';
export * as schedules from './schedules';
export * as samplers from './samplers';
export type { Verifier, ScoreExtras } from './verifiers/verifier';
export { FunctionVerifier, checkScores } from './verifiers/verifier';
export { TorchScriptVerifier, ClassLogitVerifier, SelfSupervisedVerifier } from './verifiers/torchscript';
export { EnsembleVerifier } from './verifiers/ensemble';
export { HttpVerifier, type HttpVerifierOptions } from './verifiers/http';
export { Evaluator, type EvalReport } from './eval/metrics';
export { writeSampleFiles, type SampleSet } from './io/sample-files';
export { clipGif, gridGif, type GifOptions } from './io/gif';
export { gridPng } from './io/png';
export {
  generate,
  resolveClass,
  type GenerateOptions,
  type GenerateResult,
  type GenerateProgress,
  type GenerateReport,
} from './generate';
export type { ReportFiles } from './request/report';
export {
  resolveRequest,
  createPolicy,
  DEFAULTS,
  REQUEST_FIELDS,
  type ResolvedRequest,
  type RequestPolicy,
  type OptionSchema,
  type OptionSpec,
} from './request';
export { createEngine, Engine, estimateRequestBytes, type EngineOptions, type EngineControl } from './engine/engine';
export type { MetricsSnapshot } from './engine/metrics';
export { createServer, DiffusionServer, type ServerOptions } from './server/server';
export type {
  DiffusionQueue,
  DiffusionWorker,
  QueueOptions,
  SubmitOptions,
  WorkerOptions,
  QueueResult,
  JobProgress,
  JobState,
} from './queue';
// bullmq and ioredis load on the first call, not with the package.
export const createQueue: typeof import('./queue').createQueue = (o) =>
  (require('./queue/client') as typeof import('./queue/client')).createQueue(o);
export const createWorker: typeof import('./queue').createWorker = (o) =>
  (require('./queue/worker') as typeof import('./queue/worker')).createWorker(o);
