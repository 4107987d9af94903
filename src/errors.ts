/** Stable codes of every failure the library reports; native failures use the same set. */
export type ErrorCode =
  | 'ARGUMENT' // an option or argument is invalid
  | 'ARITY' // a TorchScript method got the wrong number of inputs
  | 'SHAPE' // a tensor shape does not fit
  | 'DEVICE' // an unknown or unavailable device, or tensors on different devices
  | 'DISPOSED' // a tensor or module used after dispose()
  | 'MODEL_LOAD' // a model file is missing or not TorchScript
  | 'MODEL_CARD' // the model card is missing or invalid
  | 'STREAM_CLOSED' // work queued on a closed stream
  | 'OUT_OF_MEMORY'
  | 'NATIVE_LOAD' // the native addon could not be loaded
  | 'VERIFIER' // a verifier returned NaN or an infinite score
  | 'BUDGET' // a budget too small for the algorithm, or an attempt to exceed it
  | 'ABORTED' // the search was cancelled with its AbortSignal
  | 'BUSY' // an engine's queue is full (HTTP 429), or it is shutting down
  | 'NATIVE'; // any other native failure (its message says what)

/** The one error type of diffusion-search: `code` says what went wrong, the message says why. */
export class DiffusionSearchError extends Error {
  readonly code: ErrorCode;
  constructor(message: string, code: ErrorCode = 'NATIVE', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiffusionSearchError';
    this.code = code;
  }
}

export function isDiffusionSearchError(e: unknown, code?: ErrorCode): e is DiffusionSearchError {
  return e instanceof DiffusionSearchError && (code === undefined || e.code === code);
}
