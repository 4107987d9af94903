export { DiffusionSearchError, isDiffusionSearchError, type ErrorCode } from './errors';
export { native, type DType, type TypedArray, type ModuleInput, type ModuleOutput } from './native';
export { tensor, disposeAll, type Tensor } from './tensor';
export { createStream, setNumThreads, type Stream } from './stream';
export { loadModule, TorchModule, type LoadOptions, type ModelCardJson } from './module';
export { info, packageVersion, type Info } from './info';
export * as ops from './ops';
