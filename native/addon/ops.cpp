// Bindings of the kernels (native/kernels/kernels.h): check arguments, allocate outputs on the
// inputs' device, run the CPU or CUDA kernel on the caller's stream. Every op returns a Promise.
#include "ops.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "device.h"
#include "errors.h"
#include "kernels.h"
#include "stream.h"
#include "tensor.h"

#ifdef DS_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace ds {
namespace {

namespace k = ds::kernels;

// ---- argument readers -------------------------------------------------------------------------

struct Args {
  const Napi::CallbackInfo& info;
  Napi::Env env;
  std::string op;
  explicit Args(const Napi::CallbackInfo& i, std::string name) : info(i), env(i.Env()), op(std::move(name)) {}

  [[noreturn]] void fail(const char* code, const std::string& what) const { throw Error(code, op + ": " + what); }

  // A float32 tensor with rows as its first dimension (any sample shape after it).
  at::Tensor floats(size_t i, const std::string& name) const {
    at::Tensor t = TensorWrap::unwrap(env, info[i], op + ": " + name);
    if (t.scalar_type() != at::kFloat) fail(code::kArgument, name + " must be float32, got " + dtypeName(t.scalar_type()));
    if (t.dim() < 1) fail(code::kShape, name + " must have a leading batch dimension");
    return t.contiguous();
  }
  // A per-sample vector [rows] of float32.
  at::Tensor perSample(size_t i, const std::string& name, int64_t rows, c10::Device device) const {
    at::Tensor t = TensorWrap::unwrap(env, info[i], op + ": " + name);
    if (t.scalar_type() != at::kFloat) fail(code::kArgument, name + " must be float32, got " + dtypeName(t.scalar_type()));
    if (t.dim() != 1 || t.size(0) != rows)
      fail(code::kShape, name + " must have shape [" + std::to_string(rows) + "], got " + shapeText(t));
    sameDevice(t, device, name);
    return t.contiguous();
  }
  // int64 ids/indices [rows]; null/undefined gives nothing (the kernels then use the row index).
  c10::optional<at::Tensor> ids(size_t i, const std::string& name, int64_t rows, c10::Device device, bool optional) const {
    if (optional && (info[i].IsUndefined() || info[i].IsNull())) return c10::nullopt;
    at::Tensor t = TensorWrap::unwrap(env, info[i], op + ": " + name);
    if (t.scalar_type() != at::kLong) fail(code::kArgument, name + " must be int64, got " + dtypeName(t.scalar_type()));
    if (t.dim() != 1 || (rows >= 0 && t.size(0) != rows))
      fail(code::kShape, name + " must have shape [" + (rows >= 0 ? std::to_string(rows) : std::string("n")) + "], got " + shapeText(t));
    sameDevice(t, device, name);
    return t.contiguous();
  }
  double number(size_t i, const std::string& name) const {
    if (!info[i].IsNumber()) fail(code::kArgument, name + " must be a number");
    double x = info[i].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(x)) fail(code::kArgument, name + " must be finite");
    return x;
  }
  int64_t integer(size_t i, const std::string& name, int64_t min) const {
    double x = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : NAN;
    if (info[i].IsBigInt()) {
      bool lossless = true;
      x = static_cast<double>(info[i].As<Napi::BigInt>().Int64Value(&lossless));
    }
    if (!std::isfinite(x) || std::floor(x) != x || x < static_cast<double>(min) || x > 9.0e15)
      fail(code::kArgument, name + " must be an integer >= " + std::to_string(min));
    return static_cast<int64_t>(x);
  }
  // Seeds are uint64: a non-negative safe integer or a BigInt.
  uint64_t seed(size_t i) const {
    if (info[i].IsBigInt()) {
      bool lossless = true;
      uint64_t s = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) fail(code::kArgument, "seed must fit in 64 bits");
      return s;
    }
    return static_cast<uint64_t>(integer(i, "seed", 0));
  }
  k::NoisePath path(size_t i) const {
    std::string p = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
    if (p == "rectified_flow") return k::NoisePath::RectifiedFlow;
    if (p == "vp") return k::NoisePath::VP;
    fail(code::kArgument, "path must be 'rectified_flow' or 'vp'");
  }
  void sameDevice(const at::Tensor& t, c10::Device device, const std::string& name) const {
    if (t.device() != device)
      fail(code::kDevice, name + " is on " + t.device().str() + " but the other inputs are on " + device.str());
  }
  void sameShape(const at::Tensor& a, const at::Tensor& b, const std::string& name) const {
    if (a.sizes() != b.sizes()) fail(code::kShape, name + " must have shape " + shapeText(a) + ", got " + shapeText(b));
    sameDevice(b, a.device(), name);
  }
  static std::string shapeText(const at::Tensor& t) {
    std::string s = "[";
    for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
    return s + "]";
  }
  std::shared_ptr<Stream> stream(size_t i) const { return StreamWrap::unwrap(env, info[i]); }
  // Enqueues on the stream of argument i; `elements` sizes the work for the small-work path.
  Napi::Promise enqueue(size_t i, int64_t elements, Work work) const {
    return stream(i)->enqueue(env, std::move(work), elements);
  }
};

// DS_POISON_OUTPUTS=1 (the tests set it) fills every output with NaN before the kernel runs,
// so an element a kernel forgets to write cannot pass for a correct one.
bool poisonOutputs() {
  static const bool poison = [] {
    const char* v = std::getenv("DS_POISON_OUTPUTS");
    return v && *v && std::string(v) != "0";
  }();
  return poison;
}

at::Tensor output(at::IntArrayRef shape, const at::TensorOptions& options) {
  at::Tensor t = at::empty(shape, options);
  if (poisonOutputs()) {
    if (at::isFloatingType(t.scalar_type()))
      t.fill_(std::numeric_limits<float>::quiet_NaN());
    else
      t.fill_(-0x5a5a5a5a);
  }
  return t;
}
at::Tensor outputLike(const at::Tensor& x) { return output(x.sizes(), x.options()); }

// Elements per row: the product of the dims after the first, not numel / rows, which divided by
// zero (SIGFPE, the process killed) for a tensor of 0 rows.
int64_t rowDim(const at::Tensor& t) {
  int64_t d = 1;
  for (int64_t i = 1; i < t.dim(); ++i) d *= t.size(i);
  return d;
}
// Elements of a shape, for sizing work (saturates far above any small size instead of overflowing).
int64_t elementsOf(const std::vector<int64_t>& shape) {
  double n = 1;
  for (int64_t d : shape) n *= static_cast<double>(d);
  return n > 1e15 ? int64_t(1) << 50 : static_cast<int64_t>(n);
}
const int64_t* ptr(const c10::optional<at::Tensor>& t) { return t ? t->data_ptr<int64_t>() : nullptr; }

// Host-side range check of small index arrays before a CUDA kernel (which cannot report).
void checkIndices(const Args& a, const at::Tensor& idx, int64_t n, const std::string& name) {
  if (idx.numel() == 0) return;
  at::Tensor host = idx.device().is_cpu() ? idx : idx.to(at::kCPU);
  int64_t lo = host.min().item<int64_t>(), hi = host.max().item<int64_t>();
  if (lo < 0 || hi >= n)
    a.fail(code::kArgument, name + " must lie in [0, " + std::to_string(n) + "), got values in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

#ifdef DS_WITH_CUDA
void* cudaStreamOf(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }
#define DS_DISPATCH(tensor, name, ...)                                     \
  do {                                                                     \
    if ((tensor).is_cuda())                                                \
      k::name##_cuda(__VA_ARGS__, cudaStreamOf(tensor));                   \
    else                                                                   \
      k::name##_cpu(__VA_ARGS__);                                          \
  } while (0)
#else
#define DS_DISPATCH(tensor, name, ...)                                                       \
  do {                                                                                       \
    if ((tensor).is_cuda())                                                                  \
      throw Error(code::kDevice, "this build has no CUDA kernels (rebuild with nvcc and a CUDA libtorch)"); \
    k::name##_cpu(__VA_ARGS__);                                                              \
  } while (0)
#endif

Finish two(at::Tensor a, at::Tensor b) {
  return [a, b](Napi::Env env) -> Napi::Value {
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, TensorWrap::wrap(env, a));
    out.Set(1u, TensorWrap::wrap(env, b));
    return out;
  };
}

// ---- ops ---------------------------------------------------------------------------------------

// randn(shape, seed, ids|null, step, { device }?, stream?) -> Tensor: ε(seed, ids[r], step, e).
// uniform(...) likewise with uniforms in (0, 1].
template <bool Normal>
Napi::Value fill(const Napi::CallbackInfo& info) {
  Args a(info, Normal ? "randn" : "uniform");
  return guard(a.env, [&]() -> Napi::Value {
    if (!info[0].IsArray()) a.fail(code::kShape, "shape must be an array [rows, ...]");
    std::vector<int64_t> shape;
    auto arr = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value d = arr.Get(i);
      double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
      if (!(x >= 0) || std::floor(x) != x) a.fail(code::kShape, "shape must hold non-negative integers");
      shape.push_back(static_cast<int64_t>(x));
    }
    if (shape.empty()) a.fail(code::kShape, "shape needs a leading rows dimension");
    uint64_t seed = a.seed(1);
    c10::Device device = deviceOption(info[4]);
    auto ids = a.ids(2, "ids", shape[0], device, true);
    int64_t step = a.integer(3, "step", 0);
    return a.enqueue(5, device.is_cpu() ? elementsOf(shape) : 0, [=]() -> Finish {
      at::Tensor out = output(shape, at::TensorOptions().dtype(at::kFloat).device(device));
      int64_t rows = shape[0], dim = rows ? out.numel() / rows : 0;
      if (Normal)
        DS_DISPATCH(out, fill_normal, out.data_ptr<float>(), rows, dim, seed, ptr(ids), step);
      else
        DS_DISPATCH(out, fill_uniform, out.data_ptr<float>(), rows, dim, seed, ptr(ids), step);
      return resolveTensor(out);
    });
  });
}

// mutateGaussian(parents, idx, beta, seed, childIds|null, step, stream?)
Napi::Value mutateGaussian(const Napi::CallbackInfo& info) {
  Args a(info, "mutateGaussian");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor parents = a.floats(0, "parents");
    auto idx = *a.ids(1, "idx", -1, parents.device(), false);
    double beta = a.number(2, "beta");
    if (beta < 0 || beta > 1) a.fail(code::kArgument, "beta must be in [0, 1]");
    uint64_t seed = a.seed(3);
    int64_t n = idx.size(0);
    auto childIds = a.ids(4, "childIds", n, parents.device(), true);
    int64_t step = a.integer(5, "step", 0);
    checkIndices(a, idx, parents.size(0), "idx");
    return a.enqueue(6, cpuElementsOfRows(parents, n), [=]() -> Finish {
      auto shape = parents.sizes().vec();
      shape[0] = n;
      at::Tensor out = output(shape, parents.options());
      DS_DISPATCH(parents, mutate_gaussian, parents.data_ptr<float>(), parents.size(0), idx.data_ptr<int64_t>(), n,
                  rowDim(parents), static_cast<float>(beta), seed, ptr(childIds), step, out.data_ptr<float>());
      return resolveTensor(out);
    });
  });
}

// mutateAdditive(parents, idx, s, seed, childIds|null, step, stream?)
Napi::Value mutateAdditive(const Napi::CallbackInfo& info) {
  Args a(info, "mutateAdditive");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor parents = a.floats(0, "parents");
    auto idx = *a.ids(1, "idx", -1, parents.device(), false);
    int64_t n = idx.size(0);
    at::Tensor s = a.perSample(2, "s", n, parents.device());
    uint64_t seed = a.seed(3);
    auto childIds = a.ids(4, "childIds", n, parents.device(), true);
    int64_t step = a.integer(5, "step", 0);
    checkIndices(a, idx, parents.size(0), "idx");
    return a.enqueue(6, cpuElementsOfRows(parents, n), [=]() -> Finish {
      auto shape = parents.sizes().vec();
      shape[0] = n;
      at::Tensor out = output(shape, parents.options());
      DS_DISPATCH(parents, mutate_additive, parents.data_ptr<float>(), parents.size(0), idx.data_ptr<int64_t>(), n,
                  rowDim(parents), s.data_ptr<float>(), seed, ptr(childIds), step, out.data_ptr<float>());
      return resolveTensor(out);
    });
  });
}

// sphereNeighbours(x, tau, seed, ids|null, step, stream?)
Napi::Value sphereNeighbours(const Napi::CallbackInfo& info) {
  Args a(info, "sphereNeighbours");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor x = a.floats(0, "x");
    double tau = a.number(1, "tau");
    if (tau < -1 || tau > 1) a.fail(code::kArgument, "tau must be in [-1, 1]");
    uint64_t seed = a.seed(2);
    auto ids = a.ids(3, "ids", x.size(0), x.device(), true);
    int64_t step = a.integer(4, "step", 0);
    return a.enqueue(5, cpuElements(x), [=]() -> Finish {
      at::Tensor out = outputLike(x);
      DS_DISPATCH(x, sphere_neighbours, x.data_ptr<float>(), x.size(0), rowDim(x), static_cast<float>(tau), seed, ptr(ids),
                  step, out.data_ptr<float>());
      return resolveTensor(out);
    });
  });
}

void checkSigmas(const Args& a, const at::Tensor& from, const at::Tensor& to, bool ordered) {
  at::Tensor f = from.to(at::kCPU), t = to.to(at::kCPU);
  bool inRange = f.ge(0).logical_and(f.le(1)).all().item<bool>() && t.ge(0).logical_and(t.le(1)).all().item<bool>();
  if (!inRange) a.fail(code::kArgument, "noise levels must lie in [0, 1]");
  if (ordered && !t.ge(f).all().item<bool>()) a.fail(code::kArgument, "sigmaTo must be >= sigmaFrom for every sample");
}

// renoise(x, path, sigmaFrom, sigmaTo, seed, ids|null, step, stream?)
Napi::Value renoise(const Napi::CallbackInfo& info) {
  Args a(info, "renoise");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor x = a.floats(0, "x");
    k::NoisePath path = a.path(1);
    at::Tensor from = a.perSample(2, "sigmaFrom", x.size(0), x.device());
    at::Tensor to = a.perSample(3, "sigmaTo", x.size(0), x.device());
    uint64_t seed = a.seed(4);
    auto ids = a.ids(5, "ids", x.size(0), x.device(), true);
    int64_t step = a.integer(6, "step", 0);
    checkSigmas(a, from, to, true);
    return a.enqueue(7, cpuElements(x), [=]() -> Finish {
      at::Tensor out = outputLike(x);
      DS_DISPATCH(x, renoise, x.data_ptr<float>(), x.size(0), rowDim(x), path, from.data_ptr<float>(), to.data_ptr<float>(),
                  seed, ptr(ids), step, out.data_ptr<float>());
      return resolveTensor(out);
    });
  });
}

// eulerStep(x, v, sigmaFrom, sigmaTo, stream?)
Napi::Value eulerStep(const Napi::CallbackInfo& info) {
  Args a(info, "eulerStep");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor x = a.floats(0, "x"), v = a.floats(1, "v");
    a.sameShape(x, v, "v");
    at::Tensor from = a.perSample(2, "sigmaFrom", x.size(0), x.device());
    at::Tensor to = a.perSample(3, "sigmaTo", x.size(0), x.device());
    return a.enqueue(4, cpuElements(x), [=]() -> Finish {
      at::Tensor out = outputLike(x);
      DS_DISPATCH(x, euler_step, x.data_ptr<float>(), v.data_ptr<float>(), x.size(0), rowDim(x), from.data_ptr<float>(),
                  to.data_ptr<float>(), out.data_ptr<float>());
      return resolveTensor(out);
    });
  });
}

// heunCombine(x, v1, v2, sigmaFrom, sigmaTo, stream?)
Napi::Value heunCombine(const Napi::CallbackInfo& info) {
  Args a(info, "heunCombine");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor x = a.floats(0, "x"), v1 = a.floats(1, "v1"), v2 = a.floats(2, "v2");
    a.sameShape(x, v1, "v1");
    a.sameShape(x, v2, "v2");
    at::Tensor from = a.perSample(3, "sigmaFrom", x.size(0), x.device());
    at::Tensor to = a.perSample(4, "sigmaTo", x.size(0), x.device());
    return a.enqueue(5, cpuElements(x), [=]() -> Finish {
      at::Tensor out = outputLike(x);
      DS_DISPATCH(x, heun_combine, x.data_ptr<float>(), v1.data_ptr<float>(), v2.data_ptr<float>(), x.size(0), rowDim(x),
                  from.data_ptr<float>(), to.data_ptr<float>(), out.data_ptr<float>());
      return resolveTensor(out);
    });
  });
}

// rowCombine(x, y, coef Float64Array [rows·k·2], k, stream?) -> [k tensors]: out[j][r] = c·x[r] + d·y[r]
Napi::Value rowCombine(const Napi::CallbackInfo& info) {
  Args a(info, "rowCombine");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor x = a.floats(0, "x"), y = a.floats(1, "y");
    a.sameShape(x, y, "y");
    int64_t kk = a.integer(3, "k", 1);
    if (kk > k::kRowCombineMax) a.fail(code::kArgument, "k must be at most " + std::to_string(k::kRowCombineMax));
    if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      a.fail(code::kArgument, "coef must be a Float64Array");
    auto c = info[2].As<Napi::Float64Array>();
    int64_t n = x.size(0) * kk * 2;
    if (static_cast<int64_t>(c.ElementLength()) != n)
      a.fail(code::kShape, "coef must hold rows × k × 2 = " + std::to_string(n) + " numbers, got " +
                               std::to_string(c.ElementLength()));
    const double* data = c.Data();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(data[i])) a.fail(code::kArgument, "coef[" + std::to_string(i) + "] is not finite");
    at::Tensor coef = at::empty({n}, at::kDouble);
    std::copy(data, data + n, coef.data_ptr<double>());
    return a.enqueue(4, cpuElements(x) * kk, [=]() -> Finish {
      at::Tensor cd = coef.to(x.device());
      std::vector<at::Tensor> outs;
      float* ptrs[k::kRowCombineMax];
      for (int64_t j = 0; j < kk; ++j) {
        outs.push_back(outputLike(x));
        ptrs[j] = outs.back().data_ptr<float>();
      }
      DS_DISPATCH(x, row_combine, x.data_ptr<float>(), y.data_ptr<float>(), x.size(0), rowDim(x), cd.data_ptr<double>(),
                  static_cast<int>(kk), ptrs);
      return [outs](Napi::Env env) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, outs.size());
        for (size_t j = 0; j < outs.size(); ++j) arr.Set(static_cast<uint32_t>(j), TensorWrap::wrap(env, outs[j]));
        return arr;
      };
    });
  });
}

// ddimStep(x0, eps, path, sigmaFrom, sigmaTo, eta, seed, ids|null, step, stream?) -> [out, std]
Napi::Value ddimStep(const Napi::CallbackInfo& info) {
  Args a(info, "ddimStep");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor x0 = a.floats(0, "x0"), eps = a.floats(1, "eps");
    a.sameShape(x0, eps, "eps");
    k::NoisePath path = a.path(2);
    at::Tensor from = a.perSample(3, "sigmaFrom", x0.size(0), x0.device());
    at::Tensor to = a.perSample(4, "sigmaTo", x0.size(0), x0.device());
    double eta = a.number(5, "eta");
    if (eta < 0) a.fail(code::kArgument, "eta must be >= 0");
    uint64_t seed = a.seed(6);
    auto ids = a.ids(7, "ids", x0.size(0), x0.device(), true);
    int64_t step = a.integer(8, "step", 0);
    checkSigmas(a, from, to, false);
    return a.enqueue(9, cpuElements(x0), [=]() -> Finish {
      at::Tensor out = outputLike(x0);
      at::Tensor std = output({x0.size(0)}, x0.options());
      DS_DISPATCH(x0, ddim_step, x0.data_ptr<float>(), eps.data_ptr<float>(), x0.size(0), rowDim(x0), path,
                  from.data_ptr<float>(), to.data_ptr<float>(), static_cast<float>(eta), seed, ptr(ids), step,
                  out.data_ptr<float>(), std.data_ptr<float>());
      return two(out, std);
    });
  });
}

// topk(values [S, L] or [L], k, stream?) -> [values [S, k], indices [S, k] int64]
Napi::Value topk(const Napi::CallbackInfo& info) {
  Args a(info, "topk");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor v = a.floats(0, "values");
    if (v.dim() > 2) a.fail(code::kShape, "values must be [L] or [S, L]");
    int64_t S = v.dim() == 2 ? v.size(0) : 1, L = v.size(-1);
    int64_t kk = a.integer(1, "k", 0);
    if (kk > L) a.fail(code::kArgument, "k = " + std::to_string(kk) + " exceeds the segment length " + std::to_string(L));
    bool flat = v.dim() == 1;
    return a.enqueue(2, cpuElements(v), [=]() -> Finish {
      std::vector<int64_t> shape = flat ? std::vector<int64_t>{kk} : std::vector<int64_t>{S, kk};
      at::Tensor values = output(shape, v.options());
      at::Tensor indices = output(shape, v.options().dtype(at::kLong));
      DS_DISPATCH(v, topk_segments, v.data_ptr<float>(), S, L, kk, values.data_ptr<float>(), indices.data_ptr<int64_t>());
      return two(values, indices);
    });
  });
}

// tournamentSelect(fitness [P], nWinners, tournamentSize, seed, step, stream?) -> int64 [nWinners]
Napi::Value tournamentSelect(const Napi::CallbackInfo& info) {
  Args a(info, "tournamentSelect");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor f = a.floats(0, "fitness");
    if (f.dim() != 1) a.fail(code::kShape, "fitness must be 1-D");
    int64_t n = a.integer(1, "nWinners", 0);
    int64_t size = a.integer(2, "tournamentSize", 1);
    uint64_t seed = a.seed(3);
    int64_t step = a.integer(4, "step", 0);
    if (n > 0 && f.size(0) == 0) a.fail(code::kArgument, "cannot select from an empty population");
    return a.enqueue(5, cpuElements(f) + std::min<int64_t>(n, 1 << 20) * std::min<int64_t>(size, 1 << 20), [=]() -> Finish {
      at::Tensor out = output({n}, f.options().dtype(at::kLong));
      DS_DISPATCH(f, tournament_select, f.data_ptr<float>(), f.size(0), n, size, seed, step, out.data_ptr<int64_t>());
      return resolveTensor(out);
    });
  });
}

// resample(logW [n], nOut, method, seed, step, stream?) -> { indices, ess }
Napi::Value resample(const Napi::CallbackInfo& info) {
  Args a(info, "resample");
  return guard(a.env, [&]() -> Napi::Value {
    at::Tensor w = a.floats(0, "logW");
    if (w.dim() != 1 || w.size(0) < 1) a.fail(code::kShape, "logW must be 1-D and non-empty");
    int64_t nOut = a.integer(1, "nOut", 1);
    std::string method = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    if (method != "multinomial" && method != "systematic")
      a.fail(code::kArgument, "method must be 'multinomial' or 'systematic'");
    uint64_t seed = a.seed(3);
    int64_t step = a.integer(4, "step", 0);
    bool systematic = method == "systematic";
    return a.enqueue(5, cpuElements(w) + nOut, [=]() -> Finish {
      at::Tensor out = output({nOut}, w.options().dtype(at::kLong));
      double ess = 0;
      if (systematic)
        DS_DISPATCH(w, resample_systematic, w.data_ptr<float>(), w.size(0), nOut, seed, step, out.data_ptr<int64_t>());
      else
        DS_DISPATCH(w, resample_multinomial, w.data_ptr<float>(), w.size(0), nOut, seed, step, out.data_ptr<int64_t>());
#ifdef DS_WITH_CUDA
      ess = w.is_cuda() ? k::effective_sample_size_cuda(w.data_ptr<float>(), w.size(0), cudaStreamOf(w))
                        : k::effective_sample_size_cpu(w.data_ptr<float>(), w.size(0));
#else
      ess = k::effective_sample_size_cpu(w.data_ptr<float>(), w.size(0));
#endif
      return [out, ess](Napi::Env env) -> Napi::Value {
        Napi::Object r = Napi::Object::New(env);
        r.Set("indices", TensorWrap::wrap(env, out));
        r.Set("ess", ess);
        return r;
      };
    });
  });
}

}  // namespace

void registerOps(Napi::Env env, Napi::Object exports) {
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("randn", Napi::Function::New(env, fill<true>, "randn"));
  ops.Set("uniform", Napi::Function::New(env, fill<false>, "uniform"));
  ops.Set("mutateGaussian", Napi::Function::New(env, mutateGaussian, "mutateGaussian"));
  ops.Set("mutateAdditive", Napi::Function::New(env, mutateAdditive, "mutateAdditive"));
  ops.Set("sphereNeighbours", Napi::Function::New(env, sphereNeighbours, "sphereNeighbours"));
  ops.Set("renoise", Napi::Function::New(env, renoise, "renoise"));
  ops.Set("eulerStep", Napi::Function::New(env, eulerStep, "eulerStep"));
  ops.Set("heunCombine", Napi::Function::New(env, heunCombine, "heunCombine"));
  ops.Set("rowCombine", Napi::Function::New(env, rowCombine, "rowCombine"));
  ops.Set("ddimStep", Napi::Function::New(env, ddimStep, "ddimStep"));
  ops.Set("topk", Napi::Function::New(env, topk, "topk"));
  ops.Set("tournamentSelect", Napi::Function::New(env, tournamentSelect, "tournamentSelect"));
  ops.Set("resample", Napi::Function::New(env, resample, "resample"));
  exports.Set("ops", ops);
}

}  // namespace ds
