/** How the library loads a model it runs for inference: on CPU, small calls go to its optimised copy. */
import type { LoadOptions } from '../module';
import type { Precision } from '../precision';
import { OPTIMIZED_FORWARDS } from '../request/defaults';

export function inferenceLoad(device = 'cpu', precision: Precision = 'fp32'): LoadOptions {
  if (!device.startsWith('cpu')) return { device, precision };
  return {
    device,
    precision,
    optimizeBelowRows: OPTIMIZED_FORWARDS[precision === 'bf16' ? 'belowRowsBf16' : 'belowRows'],
    optimizeTolerance: OPTIMIZED_FORWARDS.tolerance,
    optimizeThreads: OPTIMIZED_FORWARDS.threads,
    chunkRows: OPTIMIZED_FORWARDS.chunkRows,
  };
}
