// JS handles over at::Tensor: made from typed arrays, read back asynchronously, disposed
// explicitly or by the garbage collector.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>

#include "stream.h"

namespace ds {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, at::Tensor tensor);
  // The tensor behind a handle; `what` names the argument in errors.
  static at::Tensor unwrap(Napi::Env env, const Napi::Value& value, const std::string& what);
  static bool isTensor(Napi::Env env, const Napi::Value& value);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap();

  // fromArray(data, shape, { device }) — copies the typed array into a new tensor.
  static Napi::Value fromArray(const Napi::CallbackInfo& info);

 private:
  const at::Tensor& get() const;
  void release(Napi::Env env);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value dtype(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value numel(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value toArray(const Napi::CallbackInfo& info);
  Napi::Value to(const Napi::CallbackInfo& info);

  at::Tensor tensor_;
  bool disposed_ = false;
  int64_t externalBytes_ = 0;  // host bytes reported to V8 so the GC sees their weight
};

// The Finish of a job whose result is one new tensor handle.
Finish resolveTensor(at::Tensor t);

// The size of work on `t` for Stream::enqueue's small-work path: its elements on CPU, else 0.
inline int64_t cpuElements(const at::Tensor& t) { return t.is_cpu() ? t.numel() : 0; }
// The same for `rows` rows shaped like t's (a slice, a gather, a batch of children).
inline int64_t cpuElementsOfRows(const at::Tensor& t, int64_t rows) {
  return t.dim() > 0 && t.size(0) > 0 ? cpuElements(t) / t.size(0) * rows : 0;
}

// JS typed array for a CPU contiguous tensor (a copy).
Napi::Value typedArrayOf(Napi::Env env, const at::Tensor& cpuContiguous);
const char* dtypeName(at::ScalarType type);

}  // namespace ds
