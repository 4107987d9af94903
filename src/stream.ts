/**
 * Streams: ordered native queues. Work on one stream runs in submission order on its own
 * worker thread (and its own CUDA stream on a GPU); only small CPU work on an idle stream runs at
 * once on the JS thread (native/addon/stream.cpp, kInlineMax).
 */
import { native, type NativeStream } from './native';

export type Stream = NativeStream;

/**
 * `shareThreads`: the stream's jobs share the intra-op threads with other sharing streams' jobs
 * running at the same moment (threads ÷ jobs running), instead of each using all of them.
 */
export function createStream(options: { device?: string; shareThreads?: boolean } = {}): Stream {
  const { Stream } = native();
  return new Stream(options);
}

/** Intra-op threads used by libtorch and the CPU kernels on every stream. */
export function setNumThreads(n: number): void {
  native().setNumThreads(n);
}
