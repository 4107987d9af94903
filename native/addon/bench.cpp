// Kernel micro-benchmarks, timed natively so JS overhead does not blur them: each op against
// the libtorch eager composition of the same maths and against a plain copy of the same bytes.
#include "bench.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "device.h"
#include "errors.h"
#include "kernels.h"
#include "stream.h"

#ifdef DS_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace ds {
namespace {

namespace k = ds::kernels;

struct Row {
  std::string op;
  int64_t elements;
  double bytes;  // bytes an ideal implementation reads and writes
  double oursNs, torchNs, copyNs;
};

void sync(const at::Device& d) {
#ifdef DS_WITH_CUDA
  if (d.is_cuda()) c10::cuda::getCurrentCUDAStream(d.index()).synchronize();
#else
  (void)d;
#endif
}

// Median time of one call, after a warm-up, over at least 3 calls and `minSeconds`.
double timeNs(const std::function<void()>& f, const at::Device& d, double minSeconds) {
  using clock = std::chrono::steady_clock;
  f();
  sync(d);
  std::vector<double> samples;
  auto start = clock::now();
  while (samples.size() < 3 || (std::chrono::duration<double>(clock::now() - start).count() < minSeconds && samples.size() < 200)) {
    auto t0 = clock::now();
    f();
    sync(d);
    samples.push_back(std::chrono::duration<double, std::nano>(clock::now() - t0).count());
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

#ifdef DS_WITH_CUDA
void* streamOf(const at::Tensor& t) {
  return t.is_cuda() ? c10::cuda::getCurrentCUDAStream(t.device().index()).stream() : nullptr;
}
#define DS_RUN(t, name, ...) ((t).is_cuda() ? k::name##_cuda(__VA_ARGS__, streamOf(t)) : k::name##_cpu(__VA_ARGS__))
#else
#define DS_RUN(t, name, ...) k::name##_cpu(__VA_ARGS__)
#endif

std::vector<Row> runAll(const std::vector<int64_t>& sizes, at::Device device, double minSeconds) {
  std::vector<Row> rows;
  const int64_t dim = 1024;
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  for (int64_t n : sizes) {
    int64_t B = std::max<int64_t>(1, n / dim);
    int64_t elems = B * dim;
    at::Tensor x = at::randn({B, dim}, opts), v = at::randn({B, dim}, opts), v2 = at::randn({B, dim}, opts);
    at::Tensor out = at::empty({B, dim}, opts), outStd = at::empty({B}, opts);
    at::Tensor idx = at::randint(0, B, {B}, opts.dtype(at::kLong));
    at::Tensor ids = at::arange(B, opts.dtype(at::kLong));
    at::Tensor from = at::rand({B}, opts) * 0.5 + 0.5, to = from * 0.5;
    at::Tensor s = at::rand({B}, opts);
    const float beta = 0.2f, tau = 0.9f;
    float* X = x.data_ptr<float>();
    float* O = out.data_ptr<float>();
    uint64_t seed = 7;
    double copyNs = timeNs([&] { out.copy_(x); }, device, minSeconds);
    double copy3Ns = timeNs([&] { out.copy_(x); out.copy_(v); }, device, minSeconds) * 0.75;  // 3 streams ≈ 1.5 copies
    auto add = [&](const std::string& op, double bytesPerElem, double base, const std::function<void()>& ours,
                   const std::function<void()>& eager) {
      rows.push_back({op, elems, bytesPerElem * elems, timeNs(ours, device, minSeconds), timeNs(eager, device, minSeconds), base});
    };
    // The noise alone: the ceiling of every op that draws it. Its baseline writes the same bytes.
    const double fillNs = timeNs([&] { out.fill_(0.5f); }, device, minSeconds);
    add("fill_normal", 4, fillNs,
        [&] { DS_RUN(x, fill_normal, O, B, dim, seed, ids.data_ptr<int64_t>(), 1); },
        [&] { out = at::randn({B, dim}, opts); O = out.data_ptr<float>(); });
    add("mutate_gaussian", 8, copyNs,
        [&] { DS_RUN(x, mutate_gaussian, X, B, idx.data_ptr<int64_t>(), B, dim, beta, seed, ids.data_ptr<int64_t>(), 1, O); },
        [&] { out = x.index_select(0, idx).mul_(std::sqrt(1 - beta * beta)).add_(at::randn({B, dim}, opts).mul_(beta)); O = out.data_ptr<float>(); });
    add("mutate_additive", 8, copyNs,
        [&] { DS_RUN(x, mutate_additive, X, B, idx.data_ptr<int64_t>(), B, dim, s.data_ptr<float>(), seed, ids.data_ptr<int64_t>(), 1, O); },
        [&] { out = x.index_select(0, idx).add_(at::randn({B, dim}, opts).mul_(s.unsqueeze(1))); O = out.data_ptr<float>(); });
    add("sphere_neighbours", 8, copyNs,
        [&] { DS_RUN(x, sphere_neighbours, X, B, dim, tau, seed, ids.data_ptr<int64_t>(), 1, O); },
        [&] {
          at::Tensor r = x.norm(2, 1, true), u = x / r, w = at::randn({B, dim}, opts);
          w = w - (w * u).sum(1, true) * u;
          w = w / w.norm(2, 1, true);
          out = r * (u * tau + w * std::sqrt(1 - tau * tau));
          O = out.data_ptr<float>();
        });
    add("renoise", 8, copyNs,
        [&] { DS_RUN(x, renoise, X, B, dim, k::NoisePath::RectifiedFlow, to.data_ptr<float>(), from.data_ptr<float>(), seed, ids.data_ptr<int64_t>(), 1, O); },
        [&] {
          at::Tensor r = (1 - from) / (1 - to), sd = (from * from - r * r * to * to).clamp_min(0).sqrt();
          out = x * r.unsqueeze(1) + at::randn({B, dim}, opts) * sd.unsqueeze(1);
          O = out.data_ptr<float>();
        });
    add("euler_step", 12, copy3Ns,
        [&] { DS_RUN(x, euler_step, X, v.data_ptr<float>(), B, dim, from.data_ptr<float>(), to.data_ptr<float>(), O); },
        [&] { out = x + (to - from).unsqueeze(1) * v; O = out.data_ptr<float>(); });
    add("heun_combine", 16, copyNs * 2,
        [&] { DS_RUN(x, heun_combine, X, v.data_ptr<float>(), v2.data_ptr<float>(), B, dim, from.data_ptr<float>(), to.data_ptr<float>(), O); },
        [&] { out = x + ((to - from) * 0.5).unsqueeze(1) * (v + v2); O = out.data_ptr<float>(); });
    add("ddim_step", 12, copy3Ns,
        [&] { DS_RUN(x, ddim_step, X, v.data_ptr<float>(), B, dim, k::NoisePath::RectifiedFlow, from.data_ptr<float>(), to.data_ptr<float>(), 1.0f, seed, ids.data_ptr<int64_t>(), 1, O, outStd.data_ptr<float>()); },
        [&] {
          at::Tensor af = 1 - from, at_ = 1 - to, ratio = (af * to) / (at_ * from);
          at::Tensor sd = to * (1 - ratio * ratio).clamp_min(0).sqrt();
          at::Tensor c = (to * to - sd * sd).clamp_min(0).sqrt();
          out = at_.unsqueeze(1) * x + c.unsqueeze(1) * v + sd.unsqueeze(1) * at::randn({B, dim}, opts);
          outStd = sd;
          O = out.data_ptr<float>();
        });
    {
      const int64_t L = 1024, kk = 32, S = elems / L;
      at::Tensor vals = at::empty({S, kk}, opts), inds = at::empty({S, kk}, opts.dtype(at::kLong));
      add("topk", 4, copyNs * 0.5,
          [&] { DS_RUN(x, topk_segments, X, S, L, kk, vals.data_ptr<float>(), inds.data_ptr<int64_t>()); },
          [&] { auto r = at::topk(x.view({S, L}), kk, 1, true, true); vals = std::get<0>(r); inds = std::get<1>(r); });
    }
    O = out.data_ptr<float>();
  }
  return rows;
}

}  // namespace

// benchKernels({ sizes, device, minSeconds }, stream?) -> Promise<rows>
Napi::Value benchKernels(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw Error(code::kArgument, "benchKernels(options) needs an object");
    Napi::Object o = info[0].As<Napi::Object>();
    std::vector<int64_t> sizes;
    if (o.Get("sizes").IsArray()) {
      auto a = o.Get("sizes").As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) {
        double n = a.Get(i).IsNumber() ? a.Get(i).As<Napi::Number>().DoubleValue() : 0;
        if (!(n >= 1024 && n <= (1ll << 30))) throw Error(code::kArgument, "sizes must be element counts from 1024 to 2^30");
        sizes.push_back(static_cast<int64_t>(n));
      }
    }
    at::Device device = deviceOption(o);
    double minSeconds = o.Get("minSeconds").IsNumber() ? o.Get("minSeconds").As<Napi::Number>().DoubleValue() : 0.2;
    return StreamWrap::unwrap(info.Env(), info[1])->enqueue(info.Env(), [=]() -> Finish {
      auto rows = std::make_shared<std::vector<Row>>(runAll(sizes, device, minSeconds));
      return [rows](Napi::Env env) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, rows->size());
        for (size_t i = 0; i < rows->size(); ++i) {
          const Row& r = (*rows)[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("op", r.op);
          o.Set("elements", static_cast<double>(r.elements));
          o.Set("bytes", r.bytes);
          o.Set("oursNs", r.oursNs);
          o.Set("torchNs", r.torchNs);
          o.Set("copyNs", r.copyNs);
          out.Set(i, o);
        }
        return out;
      };
    });
  });
}

}  // namespace ds
