/** The request layer (DESIGN.md, Wave 3): types, defaults, the resolver, the serving policy, the report. */
export * from './types';
export type { GenerateReport, ReportConfig, QueueReport } from './report';
export { DEFAULTS, LIMITS, defaultMaxBatch } from './defaults';
export { REQUEST_FIELDS, REQUEST_KEYS } from './fields';
export { resolveRequest, checkAlgorithmOptions, asOptions, type ResolveOptions } from './resolve';
export { createPolicy, applyPolicy, modelPath, type RequestPolicy, type PolicyOptions } from './policy';
export { resolveClass } from './classes';
export { checkValue, accepts, type OptionSchema, type OptionSpec, type FieldSpec, type Entrance } from './schema';
export { nearest, didYouMean } from './suggest';
