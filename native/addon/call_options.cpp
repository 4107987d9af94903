#include "call_options.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <cmath>

#include "errors.h"
#include "stream.h"

namespace ds {

static int positive(const Napi::Value& v, const char* what) {
  if (v.IsUndefined()) return 0;
  double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(x >= 1 && x <= 1 << 20 && std::floor(x) == x))
    throw Error(code::kArgument, std::string("call options: ") + what + " must be a positive integer");
  return static_cast<int>(x);
}

CallOptions callOptions(const Napi::Value& options) {
  CallOptions o;
  if (options.IsUndefined() || options.IsNull()) return o;
  if (!options.IsObject()) throw Error(code::kArgument, "call options must be an object");
  Napi::Object obj = options.As<Napi::Object>();
  o.precision = precisionOption(obj.Get("precision"));
  o.threads = positive(obj.Get("threads"), "threads");
  o.chunkRows = positive(obj.Get("chunkRows"), "chunkRows");
  return o;
}

ThreadCap::ThreadCap(int most) {
  if (most <= 0 || omp_get_max_threads() <= most) return;
  was_ = omp_get_max_threads();
  omp_set_num_threads(most);
}

ThreadCap::~ThreadCap() {
  if (was_ > 0) omp_set_num_threads(was_);
}

Napi::Value callThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    int threads = callOptions(info[0]).threads;
    return StreamWrap::unwrap(info.Env(), info[1])->enqueue(info.Env(), [threads]() -> Finish {
      ThreadCap cap(threads);
      int n = at::get_num_threads();
      return [n](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, n); };
    });
  });
}

}  // namespace ds
