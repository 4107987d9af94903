// Batch plumbing for the search layer: concatenate, gather rows, slice, and the per-sample
// affine combination a[b]·x + c[b]·y that converts between predictions. Thin at:: calls run on
// the caller's stream.
#include "tensor_ops.h"

#include <ATen/ATen.h>

#include "errors.h"
#include "stream.h"
#include "tensor.h"

namespace ds {
namespace {

std::vector<at::Tensor> tensorList(Napi::Env env, const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throw Error(code::kArgument, what + " must be an array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(TensorWrap::unwrap(env, arr.Get(i), what + "[" + std::to_string(i) + "]"));
  return out;
}

// cat(tensors, stream?) -> Tensor along dim 0
Napi::Value cat(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto ts = tensorList(info.Env(), info[0], "cat: tensors");
    if (ts.empty()) throw Error(code::kArgument, "cat: needs at least one tensor");
    for (size_t i = 1; i < ts.size(); ++i) {
      if (ts[i].dim() != ts[0].dim() || ts[i].sizes().slice(1) != ts[0].sizes().slice(1))
        throw Error(code::kShape, "cat: tensor " + std::to_string(i) + " has a different sample shape");
      if (ts[i].device() != ts[0].device()) throw Error(code::kDevice, "cat: tensors are on different devices");
      if (ts[i].scalar_type() != ts[0].scalar_type()) throw Error(code::kArgument, "cat: tensors have different dtypes");
    }
    int64_t elements = 0;
    for (const auto& t : ts) elements += cpuElements(t);  // one device: all CPU, or 0 (queued)
    return StreamWrap::unwrap(info.Env(), info[1])->enqueue(
        info.Env(), [ts]() { return resolveTensor(at::cat(ts, 0)); }, elements);
  });
}

// gather(t, idx int64 [K], stream?) -> t[idx] (rows)
Napi::Value gather(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    at::Tensor t = TensorWrap::unwrap(info.Env(), info[0], "gather: t");
    at::Tensor idx = TensorWrap::unwrap(info.Env(), info[1], "gather: idx");
    if (idx.scalar_type() != at::kLong || idx.dim() != 1) throw Error(code::kArgument, "gather: idx must be a 1-D int64 tensor");
    if (t.dim() < 1) throw Error(code::kShape, "gather: t needs a batch dimension");
    if (idx.numel()) {
      at::Tensor h = idx.to(at::kCPU);
      int64_t lo = h.min().item<int64_t>(), hi = h.max().item<int64_t>();
      if (lo < 0 || hi >= t.size(0))
        throw Error(code::kArgument, "gather: indices must lie in [0, " + std::to_string(t.size(0)) + ")");
    }
    at::Tensor i = idx.to(t.device());
    int64_t elements = cpuElementsOfRows(t, idx.numel());
    return StreamWrap::unwrap(info.Env(), info[2])->enqueue(
        info.Env(), [t, i]() { return resolveTensor(t.index_select(0, i)); }, elements);
  });
}

// slice(t, start, end, stream?) -> a copy of rows [start, end)
Napi::Value slice(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    at::Tensor t = TensorWrap::unwrap(info.Env(), info[0], "slice: t");
    if (t.dim() < 1) throw Error(code::kShape, "slice: t needs a batch dimension");
    int64_t n = t.size(0);
    auto num = [&](size_t i) -> int64_t {
      double x = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
      if (!(x >= 0 && x <= static_cast<double>(n)) || std::floor(x) != x)
        throw Error(code::kArgument, "slice: bounds must be integers in [0, " + std::to_string(n) + "]");
      return static_cast<int64_t>(x);
    };
    int64_t start = num(1), end = num(2);
    if (end < start) throw Error(code::kArgument, "slice: end < start");
    int64_t elements = cpuElementsOfRows(t, end - start);
    return StreamWrap::unwrap(info.Env(), info[3])->enqueue(
        info.Env(), [t, start, end]() { return resolveTensor(t.narrow(0, start, end - start).clone()); }, elements);
  });
}

// axpby(x, y, a [B], b [B], stream?) -> a[r]·x[r] + b[r]·y[r] (float32)
Napi::Value axpby(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    at::Tensor x = TensorWrap::unwrap(env, info[0], "axpby: x"), y = TensorWrap::unwrap(env, info[1], "axpby: y");
    at::Tensor a = TensorWrap::unwrap(env, info[2], "axpby: a"), b = TensorWrap::unwrap(env, info[3], "axpby: b");
    if (x.sizes() != y.sizes()) throw Error(code::kShape, "axpby: x and y must have the same shape");
    if (x.dim() < 1) throw Error(code::kShape, "axpby: x needs a batch dimension");
    for (const at::Tensor* c : {&a, &b})
      if (c->dim() != 1 || c->size(0) != x.size(0))
        throw Error(code::kShape, "axpby: coefficients must have shape [" + std::to_string(x.size(0)) + "]");
    std::vector<int64_t> view(x.dim(), 1);
    view[0] = x.size(0);
    auto work = [=]() {
      at::Tensor ca = a.to(x.device(), x.scalar_type()).view(view), cb = b.to(x.device(), x.scalar_type()).view(view);
      return resolveTensor(x * ca + y * cb);
    };
    return StreamWrap::unwrap(env, info[4])->enqueue(env, work, y.is_cpu() ? cpuElements(x) : 0);
  });
}

}  // namespace

void registerTensorOps(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("cat", Napi::Function::New(env, cat, "cat"));
  t.Set("gather", Napi::Function::New(env, gather, "gather"));
  t.Set("slice", Napi::Function::New(env, slice, "slice"));
  t.Set("axpby", Napi::Function::New(env, axpby, "axpby"));
  exports.Set("tensorOps", t);
}

}  // namespace ds
