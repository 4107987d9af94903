// kernels_cuda_test.cu — CUDA vs CPU equivalence test for ds::kernels (needs a GPU to run).
//
// Runs every op on the CPU and on the GPU from the same inputs and seed and compares:
// bitwise for noise, element-wise ops, indices and ESS; ~1e-6 relative for sphere_neighbours
// (double reductions in a different order). Covers the float4 fast path and the scalar path
// (dim % 4 != 0 and misaligned pointers), the NaN rows the CUDA versions write for invalid
// per-sample data, and prints bandwidth figures. Exit code 0 = pass, 77 = no CUDA device (skip).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "../kernels.h"

using namespace ds::kernels;

static int g_fail = 0, g_checks = 0;
#define CHECK(cond, ...)                                             \
  do {                                                               \
    ++g_checks;                                                      \
    if (!(cond)) {                                                   \
      ++g_fail;                                                      \
      std::printf("  FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                      \
      std::printf("\n");                                             \
    }                                                                \
  } while (0)
#define CU(x)                                                                        \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

template <class T>
struct Dev {
  T* base = nullptr;
  T* p = nullptr;
  size_t n = 0;
  Dev(size_t n_, size_t offset = 0) : n(n_) {
    CU(cudaMalloc(&base, (n_ + offset + 4) * sizeof(T)));
    p = base + offset;
  }
  Dev(const std::vector<T>& h, size_t offset = 0) : Dev(h.size(), offset) { up(h); }
  ~Dev() { cudaFree(base); }
  void up(const std::vector<T>& h) {
    CU(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> down() const {
    std::vector<T> h(n);
    CU(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  void poison() { CU(cudaMemset(p, 0xFF, n * sizeof(T))); }
};

static std::mt19937_64 rng(77);
static std::vector<float> rnd(size_t n, float lo = -2, float hi = 2) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
static std::vector<int64_t> rnd_ids(size_t n) {
  std::vector<int64_t> v(n);
  for (auto& x : v) x = int64_t(rng() >> 20);
  return v;
}
static bool bits_eq(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}
static size_t count_diff(const std::vector<float>& a, const std::vector<float>& b) {
  size_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += std::memcmp(&a[i], &b[i], 4) != 0;
  return d;
}

struct Shape {
  int64_t rows, dim;
  size_t offset;  // misalign device pointers by this many floats
};
static const Shape kShapes[] = {{1, 1, 0},     {3, 5, 0},      {4, 16, 0},   {7, 1000, 0},
                                {5, 1000, 1},  {2, 4099, 0},   {64, 96, 0},  {3, 70000, 0},
                                {1, 1 << 20, 0}, {9, 513, 3}};

static void test_elementwise() {
  std::printf("[elementwise ops: CUDA == CPU bitwise]\n");
  for (const Shape& sh : kShapes) {
    const int64_t R = sh.rows, D = sh.dim, N = R * D;
    const uint64_t seed = rng();
    const int64_t step = int64_t(rng() % 100);
    auto ids = rnd_ids(R);
    auto x = rnd(N), v1 = rnd(N), v2 = rnd(N);
    std::vector<int64_t> idx(R);
    for (auto& i : idx) i = int64_t(rng() % R);
    std::vector<float> sf(R), st(R), sadd = rnd(R, 0, 1);
    std::uniform_real_distribution<float> d01(0, 1);
    for (int64_t b = 0; b < R; ++b) {
      float a = d01(rng), c = d01(rng);
      sf[b] = std::min(a, c);
      st[b] = std::max(a, c);
      if (b == 1) st[b] = sf[b];
    }
    Dev<float> dx(x, sh.offset), dv1(v1, sh.offset), dv2(v2, sh.offset), dout(N, sh.offset),
        dsf(sf), dst(st), dsadd(sadd), dstd(R);
    Dev<int64_t> dids(ids), didx(idx);
    std::vector<float> hout(N), hstd(R);
    auto cmp = [&](const char* what) {
      CU(cudaDeviceSynchronize());
      const size_t d = count_diff(hout, dout.down());
      CHECK(d == 0, "%s %lldx%lld+%zu: %zu of %lld differ", what, (long long)R, (long long)D,
            sh.offset, d, (long long)N);
    };
    dout.poison();
    fill_normal_cpu(hout.data(), R, D, seed, ids.data(), step);
    fill_normal_cuda(dout.p, R, D, seed, dids.p, step, nullptr);
    cmp("fill_normal");
    dout.poison();
    fill_uniform_cpu(hout.data(), R, D, seed, ids.data(), step);
    fill_uniform_cuda(dout.p, R, D, seed, dids.p, step, nullptr);
    cmp("fill_uniform");
    dout.poison();
    fill_normal_cpu(hout.data(), R, D, seed, nullptr, step);
    fill_normal_cuda(dout.p, R, D, seed, nullptr, step, nullptr);
    cmp("fill_normal(null ids)");
    dout.poison();
    mutate_gaussian_cpu(x.data(), R, idx.data(), R, D, 0.3f, seed, ids.data(), step, hout.data());
    mutate_gaussian_cuda(dx.p, R, didx.p, R, D, 0.3f, seed, dids.p, step, dout.p, nullptr);
    cmp("mutate_gaussian");
    dout.poison();
    mutate_additive_cpu(x.data(), R, idx.data(), R, D, sadd.data(), seed, ids.data(), step,
                        hout.data());
    mutate_additive_cuda(dx.p, R, didx.p, R, D, dsadd.p, seed, dids.p, step, dout.p, nullptr);
    cmp("mutate_additive");
    for (int path : {0, 1}) {
      dout.poison();
      renoise_cpu(x.data(), R, D, NoisePath(path), sf.data(), st.data(), seed, ids.data(), step,
                  hout.data());
      renoise_cuda(dx.p, R, D, NoisePath(path), dsf.p, dst.p, seed, dids.p, step, dout.p,
                   nullptr);
      cmp("renoise");
      for (float eta : {0.0f, 0.6f, 1.0f}) {
        dout.poison();
        dstd.poison();
        ddim_step_cpu(x.data(), v1.data(), R, D, NoisePath(path), st.data(), sf.data(), eta, seed,
                      ids.data(), step, hout.data(), hstd.data());
        ddim_step_cuda(dx.p, dv1.p, R, D, NoisePath(path), dst.p, dsf.p, eta, seed, dids.p, step,
                       dout.p, dstd.p, nullptr);
        cmp("ddim_step");
        CHECK(bits_eq(hstd, dstd.down()), "ddim out_std path %d eta %g", path, eta);
      }
    }
    dout.poison();
    euler_step_cpu(x.data(), v1.data(), R, D, sf.data(), st.data(), hout.data());
    euler_step_cuda(dx.p, dv1.p, R, D, dsf.p, dst.p, dout.p, nullptr);
    cmp("euler_step");
    dout.poison();
    heun_combine_cpu(x.data(), v1.data(), v2.data(), R, D, sf.data(), st.data(), hout.data());
    heun_combine_cuda(dx.p, dv1.p, dv2.p, R, D, dsf.p, dst.p, dout.p, nullptr);
    cmp("heun_combine");
    {
      std::uniform_real_distribution<double> dc(-3.0, 3.0);
      std::vector<double> c(R * 3 * 2);
      for (auto& v : c) v = dc(rng);
      Dev<double> dc3(c);
      Dev<float> d2(N, sh.offset), d3(N, sh.offset);
      std::vector<float> h2(N), h3(N);
      float* hp[3] = {hout.data(), h2.data(), h3.data()};
      float* dp[3] = {dout.p, d2.p, d3.p};
      dout.poison();
      row_combine_cpu(x.data(), v1.data(), R, D, c.data(), 3, hp);
      row_combine_cuda(dx.p, dv1.p, R, D, dc3.p, 3, dp, nullptr);
      cmp("row_combine[0]");
      CHECK(count_diff(h2, d2.down()) == 0 && count_diff(h3, d3.down()) == 0, "row_combine[1..2] %lldx%lld",
            (long long)R, (long long)D);
    }
    // sphere: tolerance (different double summation order)
    if (D >= 2) {
      dout.poison();
      sphere_neighbours_cpu(x.data(), R, D, 0.8f, seed, ids.data(), step, hout.data());
      sphere_neighbours_cuda(dx.p, R, D, 0.8f, seed, dids.p, step, dout.p, nullptr);
      CU(cudaDeviceSynchronize());
      auto g = dout.down();
      double worst = 0;
      for (int64_t i = 0; i < N; ++i) {
        const double e = std::fabs(double(g[i]) - hout[i]) / (std::fabs(hout[i]) + 1e-3);
        worst = (e > worst || e != e) ? e : worst;
      }
      CHECK(worst < 1e-5, "sphere %lldx%lld rel diff %g", (long long)R, (long long)D, worst);
    }
  }
  // In place on the GPU equals out-of-place.
  {
    const int64_t R = 4, D = 1000;
    auto x = rnd(R * D);
    std::vector<float> sf(R, 0.2f), st(R, 0.5f);
    Dev<float> a(x), b(x), o(R * D), dsf(sf), dst(st);
    renoise_cuda(a.p, R, D, NoisePath::VP, dsf.p, dst.p, 5, nullptr, 1, o.p, nullptr);
    renoise_cuda(b.p, R, D, NoisePath::VP, dsf.p, dst.p, 5, nullptr, 1, b.p, nullptr);
    CU(cudaDeviceSynchronize());
    CHECK(bits_eq(o.down(), b.down()), "renoise in place");
  }
}

static void test_invalid_rows() {
  std::printf("[CUDA invalid per-sample data -> NaN rows, no crash]\n");
  const int64_t R = 3, D = 8;
  auto x = rnd(R * D);
  std::vector<int64_t> idx = {0, 7, -1};
  Dev<float> dx(x), dout(R * D);
  Dev<int64_t> didx(idx);
  mutate_gaussian_cuda(dx.p, R, didx.p, R, D, 0.2f, 1, nullptr, 0, dout.p, nullptr);
  CU(cudaDeviceSynchronize());
  auto o = dout.down();
  bool ok = true;
  for (int64_t e = 0; e < D; ++e) ok = ok && !std::isnan(o[e]) && std::isnan(o[D + e]) && std::isnan(o[2 * D + e]);
  CHECK(ok, "mutate_gaussian bad idx rows");
  std::vector<float> sf = {0.1f, 0.6f, NAN}, st = {0.5f, 0.4f, 0.5f};
  Dev<float> dsf(sf), dst(st), dstd(R);
  renoise_cuda(dx.p, R, D, NoisePath::RectifiedFlow, dsf.p, dst.p, 1, nullptr, 0, dout.p, nullptr);
  CU(cudaDeviceSynchronize());
  o = dout.down();
  ok = true;
  for (int64_t e = 0; e < D; ++e) ok = ok && !std::isnan(o[e]) && std::isnan(o[D + e]) && std::isnan(o[2 * D + e]);
  CHECK(ok, "renoise bad sigma rows");
  std::vector<float> bad_t = {0.5f, 1.5f, 0.2f};
  Dev<float> dbt(bad_t);
  ddim_step_cuda(dx.p, dx.p, R, D, NoisePath::VP, dsf.p, dbt.p, 0.5f, 1, nullptr, 0, dout.p,
                 dstd.p, nullptr);
  CU(cudaDeviceSynchronize());
  o = dout.down();
  auto s = dstd.down();
  CHECK(!std::isnan(s[0]) && std::isnan(s[1]) && std::isnan(s[2]), "ddim bad sigma std");
  CHECK(!std::isnan(o[0]) && std::isnan(o[D]) && std::isnan(o[2 * D]), "ddim bad sigma rows");
  // Scalar argument errors throw before launching.
  bool threw = false;
  try {
    mutate_gaussian_cuda(dx.p, R, didx.p, R, D, 2.0f, 1, nullptr, 0, dout.p, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "beta > 1 must throw");
  threw = false;
  try {
    topk_segments_cuda(dx.p, 1, 4, 5, dout.p, nullptr, nullptr);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "k > L must throw");
}

static void test_selection() {
  std::printf("[selection: CUDA == CPU indices]\n");
  struct TK {
    int64_t S, L, k;
  };
  for (TK c : {TK{1, 1, 1}, TK{5, 10, 3}, TK{3, 4096, 100}, TK{1, 4097, 5}, TK{20, 5000, 50},
               TK{1, 1 << 20, 1000}, TK{1000, 64, 8}, TK{2, 3000, 3000}}) {
    auto v = rnd(c.S * c.L, -3, 3);
    for (size_t i = 0; i < v.size(); i += 7) v[i] = float(int(v[i]));  // ties
    if (v.size() > 10) {
      v[3] = NAN;
      v[4] = -0.0f;
      v[5] = 0.0f;
      v[6] = INFINITY;
    }
    std::vector<float> hv(c.S * c.k);
    std::vector<int64_t> hi(c.S * c.k);
    topk_segments_cpu(v.data(), c.S, c.L, c.k, hv.data(), hi.data());
    Dev<float> dv(v), dov(c.S * c.k);
    Dev<int64_t> doi(c.S * c.k);
    topk_segments_cuda(dv.p, c.S, c.L, c.k, dov.p, doi.p, nullptr);
    CU(cudaDeviceSynchronize());
    CHECK(doi.down() == hi, "topk indices S=%lld L=%lld k=%lld", (long long)c.S, (long long)c.L,
          (long long)c.k);
    CHECK(bits_eq(dov.down(), hv), "topk values S=%lld L=%lld", (long long)c.S, (long long)c.L);
  }
  for (int64_t P : {1, 7, 1000, 100000}) {
    auto f = rnd(P);
    if (P > 3) f[1] = f[2], f[0] = NAN;
    const int64_t W = 4096;
    std::vector<int64_t> h(W);
    tournament_select_cpu(f.data(), P, W, 3, 99, 4, h.data());
    Dev<float> df(f);
    Dev<int64_t> dw(W);
    tournament_select_cuda(df.p, P, W, 3, 99, 4, dw.p, nullptr);
    CU(cudaDeviceSynchronize());
    CHECK(dw.down() == h, "tournament P=%lld", (long long)P);
  }
  for (int64_t n : {1, 5, 256, 257, 10000, 1000000}) {
    for (int variant = 0; variant < 3; ++variant) {
      auto lw = rnd(n, -30, 5);
      if (variant == 1) std::fill(lw.begin(), lw.end(), -INFINITY);
      if (variant == 2 && n > 2) lw[n / 2] = INFINITY, lw[0] = NAN;
      const int64_t n_out = n + 3;
      std::vector<int64_t> hm(n_out), hs(n_out);
      resample_multinomial_cpu(lw.data(), n, n_out, 7, 3, hm.data());
      resample_systematic_cpu(lw.data(), n, n_out, 7, 3, hs.data());
      const double hess = effective_sample_size_cpu(lw.data(), n);
      Dev<float> dl(lw);
      Dev<int64_t> dm(n_out), ds(n_out);
      resample_multinomial_cuda(dl.p, n, n_out, 7, 3, dm.p, nullptr);
      resample_systematic_cuda(dl.p, n, n_out, 7, 3, ds.p, nullptr);
      const double dess = effective_sample_size_cuda(dl.p, n, nullptr);
      CU(cudaDeviceSynchronize());
      CHECK(dm.down() == hm, "multinomial n=%lld v%d", (long long)n, variant);
      CHECK(ds.down() == hs, "systematic n=%lld v%d", (long long)n, variant);
      CHECK(std::memcmp(&hess, &dess, 8) == 0, "ESS n=%lld: %.17g vs %.17g", (long long)n, hess,
            dess);
    }
  }
}

static void bench() {
  std::printf("[bandwidth, informational]\n");
  cudaDeviceProp prop;
  CU(cudaGetDeviceProperties(&prop, 0));
  std::printf("  device: %s\n", prop.name);
  cudaEvent_t a, b;
  CU(cudaEventCreate(&a));
  CU(cudaEventCreate(&b));
  for (int lg : {16, 20, 24}) {
    const int64_t D = 4096, R = (int64_t(1) << lg) / D > 0 ? (int64_t(1) << lg) / D : 1;
    const int64_t N = R * D;
    Dev<float> p(N), o(N);
    std::vector<int64_t> idx(R);
    for (int64_t i = 0; i < R; ++i) idx[i] = i;
    Dev<int64_t> di(idx);
    fill_normal_cuda(p.p, R, D, 1, nullptr, 0, nullptr);
    auto time = [&](auto&& f) {
      f();
      CU(cudaEventRecord(a));
      const int reps = 20;
      for (int r = 0; r < reps; ++r) f();
      CU(cudaEventRecord(b));
      CU(cudaEventSynchronize(b));
      float ms;
      CU(cudaEventElapsedTime(&ms, a, b));
      return ms / reps;
    };
    const double bytes = 8.0 * N;
    const float tc = time([&] { CU(cudaMemcpyAsync(o.p, p.p, 4 * N, cudaMemcpyDeviceToDevice)); });
    const float tm = time([&] {
      mutate_gaussian_cuda(p.p, R, di.p, R, D, 0.2f, 1, nullptr, 1, o.p, nullptr);
    });
    const float tn = time([&] { fill_normal_cuda(o.p, R, D, 1, nullptr, 1, nullptr); });
    std::printf("  2^%d elems: copy %.0f GB/s, mutate_gaussian %.0f GB/s (%.1f%% of copy), "
                "fill_normal %.0f Gnormals/s\n",
                lg, bytes / tc / 1e6, bytes / tm / 1e6, 100.0 * tc / tm, N / tn / 1e6);
  }
}

int main() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("no CUDA device: skipped\n");
    return 77;
  }
  test_elementwise();
  test_invalid_rows();
  test_selection();
  bench();
  std::printf("%d checks, %d failures\n", g_checks, g_fail);
  return g_fail == 0 ? 0 : 1;
}
