// Per-call options of Module.call: the precision it runs in, the most intra-op threads it uses and
// the rows from which it runs as row chunks side by side.
#pragma once
#include <napi.h>

#include "precision.h"

namespace ds {

struct CallOptions {
  Precision precision = Precision::kFp32;
  // Most OpenMP threads the call's ops use on a CPU (0: the stream's count).
  int threads = 0;
  // With more than one thread, calls of at least twice this many rows (every input a tensor of the
  // same rows) run as row chunks side by side, one thread each (0: never).
  int chunkRows = 0;
};

// Reads { precision?: 'fp32' | 'bf16', threads?, chunkRows?: positive integers } (undefined: the defaults).
CallOptions callOptions(const Napi::Value& options);

// Caps this thread's OpenMP team size while alive (libtorch's parallel ops and oneDNN read it),
// restoring the count the stream set after.
class ThreadCap {
 public:
  explicit ThreadCap(int most);
  ~ThreadCap();
  ThreadCap(const ThreadCap&) = delete;
  ThreadCap& operator=(const ThreadCap&) = delete;

 private:
  int was_ = 0;
};

// callThreads(options?, stream?) -> Promise<number>: the intra-op threads a call with these
// options gets on `stream` (what libtorch's parallel ops see inside its job).
Napi::Value callThreads(const Napi::CallbackInfo& info);

}  // namespace ds
