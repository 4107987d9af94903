/** The engine a service holds: models loaded once, cross-search batching, admission, metrics. */
export { Engine, createEngine, estimateRequestBytes, type EngineOptions, type EngineControl } from './engine';
export { ModuleBatcher, LaneRegistry, batchKey, type BatcherOptions, type Lane } from './batcher';
export { ModelCache, type Held } from './models';
export { Admission, type AdmissionOptions } from './admission';
export { EngineMetrics, type MetricsSnapshot, type ModelKind } from './metrics';
export { configureThreads, type ThreadSettings, type WaitPolicy } from './threads';
