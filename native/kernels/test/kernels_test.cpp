// kernels_test.cpp — standalone test of the ds::kernels CPU ops (no torch, no Node).
//
// Every op is checked against an independent float64 reference written here (its own Philox,
// its own Box–Muller with std::log/std::cos/std::sin, its own formulas), on fresh random inputs
// of several shapes; outputs are poisoned with NaN first and every element is checked.
// Also: Philox known-answer vectors, normal statistics (mean, variance, Kolmogorov–Smirnov),
// stream independence, batch-layout and thread-count invariance, op-specific invariants
// (N(0,1) preservation, exact cosine/norm), resampling frequencies (chi-square), argument errors.
//
// Build: see build_and_run.sh (g++ -std=c++17 -O2 -fopenmp).
#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../kernels.h"
#include "../ds_paths.h"    // renoise / DDIM coefficients, for the bitwise formula test
#include "../cpu_common.h"  // cpu::philox_tile, for the counter-wrap test of the SIMD paths
#include "../ds_math.h"  // the Philox known-answer test and the scalar noise formula

using namespace ds::kernels;

// ------------------------------------------------------------------------------------------------
// Tiny test harness.
static int g_failures = 0;
static int g_checks = 0;
#define CHECK(cond, ...)                                               \
  do {                                                                 \
    ++g_checks;                                                        \
    if (!(cond)) {                                                     \
      ++g_failures;                                                    \
      std::printf("  FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond);   \
      std::printf(__VA_ARGS__);                                        \
      std::printf("\n");                                               \
    }                                                                  \
  } while (0)

struct Section {
  const char* name;
  int failures_at_start;
  std::chrono::steady_clock::time_point t0;
  explicit Section(const char* n) : name(n), failures_at_start(g_failures) {
    t0 = std::chrono::steady_clock::now();
  }
  ~Section() {
    const double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
    std::printf("[%s] %s (%.0f ms)\n", g_failures == failures_at_start ? " ok " : "FAIL", name, ms);
  }
};

template <class F>
static bool throws_invalid(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

static uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}
static const float kNaN = std::numeric_limits<float>::quiet_NaN();
static const float kInf = std::numeric_limits<float>::infinity();

// ------------------------------------------------------------------------------------------------
// Independent reference: Philox4x32-10 (straight from the SC'11 paper / Random123 definition).
struct RefPhilox {
  static std::array<uint32_t, 4> block(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = uint64_t(0xD2511F53u) * c[0];
      const uint64_t p1 = uint64_t(0xCD9E8D57u) * c[2];
      std::array<uint32_t, 4> n;
      n[0] = uint32_t(p1 >> 32) ^ c[1] ^ k[0];
      n[1] = uint32_t(p1);
      n[2] = uint32_t(p0 >> 32) ^ c[3] ^ k[1];
      n[3] = uint32_t(p0);
      c = n;
      k[0] += 0x9E3779B9u;
      k[1] += 0xBB67AE85u;
    }
    return c;
  }
};

static uint32_t ref_word(uint64_t seed, int64_t id, int64_t step, int64_t e) {
  const uint64_t b = uint64_t(e) / 4;
  auto r = RefPhilox::block({uint32_t(b), uint32_t(b >> 32), uint32_t(uint64_t(id)),
                             uint32_t(uint64_t(step))},
                            {uint32_t(seed), uint32_t(seed >> 32)});
  return r[e % 4];
}
static double ref_uniform(uint64_t seed, int64_t id, int64_t step, int64_t e) {
  return (double(ref_word(seed, id, step, e) >> 8) + 1.0) / 16777216.0;
}
static double ref_normal(uint64_t seed, int64_t id, int64_t step, int64_t e) {
  const int64_t e0 = e - (e % 2);  // pair start (lanes 0,1 or 2,3)
  const double u1 = (double(ref_word(seed, id, step, e0) >> 8) + 1.0) / 16777216.0;
  const double u2 = double(ref_word(seed, id, step, e0 + 1) >> 8) / 16777216.0;
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double th = 2.0 * M_PI * u2;
  return (e % 2 == 0) ? r * std::cos(th) : r * std::sin(th);
}
static std::vector<double> ref_noise_row(uint64_t seed, int64_t id, int64_t step, int64_t dim) {
  std::vector<double> v(dim);
  for (int64_t e = 0; e < dim; ++e) v[e] = ref_normal(seed, id, step, e);
  return v;
}
static double ref_alpha(int path, double s) { return path == 0 ? 1.0 - s : std::sqrt(1.0 - s * s); }

// ------------------------------------------------------------------------------------------------
// Random inputs.
static std::mt19937_64 g_rng(12345);
static std::vector<float> rand_floats(size_t n, float lo = -2.f, float hi = 2.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
static std::vector<int64_t> rand_ids(size_t n) {
  std::uniform_int_distribution<int64_t> d(0, (int64_t(1) << 40));
  std::vector<int64_t> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
static std::vector<float> poisoned(size_t n) { return std::vector<float>(n, kNaN); }

struct Shape {
  int64_t rows, dim;
};
static const Shape kShapes[] = {{1, 1},   {3, 3},    {2, 4},    {5, 5},    {4, 17},
                                {3, 511}, {2, 512},  {3, 513},  {7, 1000}, {2, 4099},
                                {1, 20000}, {64, 96}};

// ------------------------------------------------------------------------------------------------
static void test_philox_kat() {
  Section s("Philox4x32-10 known-answer vectors (Random123 kat_vectors)");
  struct Kat {
    uint64_t seed;
    uint32_t c[4];
    uint32_t want[4];
  };
  // key words: seed low = key[0], seed high = key[1]
  const Kat kats[] = {
      {0x0ull, {0, 0, 0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {0xffffffffffffffffull,
       {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {(uint64_t(0x299f31d0u) << 32) | 0xa4093822u,
       {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    auto r = RefPhilox::block({k.c[0], k.c[1], k.c[2], k.c[3]},
                              {uint32_t(k.seed), uint32_t(k.seed >> 32)});
    for (int l = 0; l < 4; ++l)
      CHECK(r[l] == k.want[l], "reference lane %d: %08x != %08x", l, r[l], k.want[l]);
  }
  // The library's generator itself (ds_math.h, shared by CPU and CUDA).
  for (const Kat& k : kats) {
    const auto r = ds::kernels::detail::philox4x32_10(k.c[0], k.c[1], k.c[2], k.c[3],
                                                      uint32_t(k.seed), uint32_t(k.seed >> 32));
    const uint32_t got[4] = {r.v0, r.v1, r.v2, r.v3};
    for (int l = 0; l < 4; ++l)
      CHECK(got[l] == k.want[l], "library lane %d: %08x != %08x", l, got[l], k.want[l]);
  }
  // The library's generator, observed through fill_uniform: element e of id/step uses counter
  // {e/4, 0, id, step}. Choose id = c2, step = c3 with c0 = c1 = 0 and compare the top 24 bits.
  for (const Kat& k : kats) {
    if (k.c[0] != 0 || k.c[1] != 0) continue;
    std::vector<float> u(4);
    const int64_t id = int64_t(k.c[2]), step = int64_t(k.c[3]);
    fill_uniform_cpu(u.data(), 1, 4, k.seed, &id, step);
    for (int l = 0; l < 4; ++l) {
      const float want = float((k.want[l] >> 8) + 1u) * 5.9604644775390625e-8f;
      CHECK(fbits(u[l]) == fbits(want), "kernel lane %d", l);
    }
  }
  // Full counter words through the library (ids/steps with all bits set, e spanning blocks):
  // compare the library uniform to the reference uniform over many random counters.
  int bad = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const uint64_t seed = g_rng();
    const int64_t id = int64_t(g_rng());
    const int64_t step = int64_t(g_rng());
    std::vector<float> u(37);
    fill_uniform_cpu(u.data(), 1, 37, seed, &id, step);
    for (int64_t e = 0; e < 37; ++e)
      bad += double(u[e]) != ref_uniform(seed, id, step, e);
  }
  CHECK(bad == 0, "%d uniform mismatches vs reference Philox", bad);
}

static void test_uniform_and_normal_vs_reference() {
  Section s("fill_uniform (bitwise) and fill_normal (|err| <= 3e-6) vs float64 reference");
  double max_err = 0.0;
  for (const Shape& sh : kShapes) {
    const uint64_t seed = g_rng();
    const int64_t step = int64_t(g_rng() % 1000);
    auto ids = rand_ids(sh.rows);
    auto u = poisoned(sh.rows * sh.dim);
    auto z = poisoned(sh.rows * sh.dim);
    fill_uniform_cpu(u.data(), sh.rows, sh.dim, seed, ids.data(), step);
    fill_normal_cpu(z.data(), sh.rows, sh.dim, seed, ids.data(), step);
    int bad_u = 0, bad_z = 0;
    for (int64_t r = 0; r < sh.rows; ++r)
      for (int64_t e = 0; e < sh.dim; ++e) {
        const float uu = u[r * sh.dim + e];
        bad_u += !(double(uu) == ref_uniform(seed, ids[r], step, e) && uu > 0.f && uu <= 1.f);
        const double zr = ref_normal(seed, ids[r], step, e);
        const double err = std::fabs(double(z[r * sh.dim + e]) - zr);
        if (!(err <= 3e-6)) ++bad_z;
        if (err > max_err || err != err) max_err = err;
      }
    CHECK(bad_u == 0, "shape %lldx%lld: %d uniform mismatches", (long long)sh.rows,
          (long long)sh.dim, bad_u);
    CHECK(bad_z == 0, "shape %lldx%lld: %d normal mismatches", (long long)sh.rows,
          (long long)sh.dim, bad_z);
  }
  std::printf("      max |normal - reference| = %.3g\n", max_err);
  // null ids -> row index
  std::vector<float> a(3 * 10), b(3 * 10);
  const int64_t ids[3] = {0, 1, 2};
  fill_normal_cpu(a.data(), 3, 10, 7, nullptr, 3);
  fill_normal_cpu(b.data(), 3, 10, 7, ids, 3);
  CHECK(same_bits(a, b), "null ids must mean id = row");
  // id uses the low 32 bits
  const int64_t hi_id = (int64_t(1) << 32) + 5, lo_id = 5;
  std::vector<float> c(8), d(8);
  fill_normal_cpu(c.data(), 1, 8, 9, &hi_id, 1);
  fill_normal_cpu(d.data(), 1, 8, 9, &lo_id, 1);
  CHECK(same_bits(c, d), "ids use the low 32 bits");
}

// The SIMD Philox paths and the ISA clones of Box–Muller must give the bits of the plain scalar
// formula (compiled here for the baseline ISA, FMAs through libm's fmaf) — which is also what the
// CUDA kernels compute.
static void test_normal_bitwise_vs_scalar_formula() {
  Section s("fill_normal / fill_uniform bitwise == scalar detail::normal4(noise_block) formula");
  int bad = 0;
  const int64_t dims[] = {1, 3, 4, 5, 31, 64, 100, 511, 512, 513, 1029, 4096, 20000};
  for (int64_t dim : dims) {
    const uint64_t seed = g_rng();
    const int64_t step = int64_t(g_rng());
    auto ids = rand_ids(3);
    auto z = poisoned(3 * dim);
    auto u = poisoned(3 * dim);
    fill_normal_cpu(z.data(), 3, dim, seed, ids.data(), step);
    fill_uniform_cpu(u.data(), 3, dim, seed, ids.data(), step);
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t b = 0; b * 4 < dim; ++b) {
        const auto blk = detail::noise_block(seed, uint64_t(ids[r]), uint64_t(step), uint64_t(b));
        float ref[4];
        detail::normal4(blk, ref[0], ref[1], ref[2], ref[3]);
        const uint32_t words[4] = {blk.v0, blk.v1, blk.v2, blk.v3};
        for (int l = 0; l < 4 && b * 4 + l < dim; ++l) {
          const int64_t at = r * dim + b * 4 + l;
          bad += std::memcmp(&z[at], &ref[l], 4) != 0;
          const float ur = detail::uniform_open0(words[l]);
          bad += std::memcmp(&u[at], &ur, 4) != 0;
        }
      }
  }
  // Philox tiles straddling the wrap of the low counter word (elements near 2^34), and tails.
  for (uint64_t block0 : {uint64_t(0), uint64_t(0xFFFFFFE0u), uint64_t(0xFFFFFFF0u), uint64_t(0xFFFFFFFFu),
                          uint64_t(0x1FFFFFFC0ull)})
    for (int64_t nb : {int64_t(1), int64_t(7), int64_t(32), int64_t(45), cpu::kTileBlocks}) {
      uint32_t w[4][cpu::kTileBlocks];
      const uint64_t seed = g_rng(), id = g_rng(), step = g_rng();
      cpu::philox_tile(w[0], w[1], w[2], w[3], seed, id, step, block0, nb);
      for (int64_t i = 0; i < nb; ++i) {
        const auto blk = detail::noise_block(seed, id, step, block0 + uint64_t(i));
        bad += w[0][i] != blk.v0 || w[1][i] != blk.v1 || w[2][i] != blk.v2 || w[3][i] != blk.v3;
      }
      // The element-wise noise ops' tile (fused in registers on AVX-512) at the same counters:
      // o = z, and o = a·x + b·z.
      const int64_t n = 4 * nb - 1;
      std::vector<float> z(cpu::kTile, kNaN), o(cpu::kTile, kNaN), x = rand_floats(cpu::kTile);
      cpu::affine_noise_tile(cpu::NoiseAffine{z.data(), nullptr, nullptr, 0.f, 0.f, 0.f}, seed, id,
                             step, int64_t(4 * block0), n);
      cpu::affine_noise_tile(cpu::NoiseAffine{o.data(), x.data(), nullptr, 0.6f, 0.f, 0.8f}, seed, id,
                             step, int64_t(4 * block0), n);
      for (int64_t e = 0; e < n; ++e) {
        float ref[4];
        detail::normal4(detail::noise_block(seed, id, step, block0 + uint64_t(e / 4)), ref[0], ref[1],
                        ref[2], ref[3]);
        const float want = detail::fadd(detail::fmul(0.6f, x[e]), detail::fmul(0.8f, ref[e % 4]));
        bad += std::memcmp(&z[e], &ref[e % 4], 4) != 0 || std::memcmp(&o[e], &want, 4) != 0;
      }
      bad += !(z[n] != z[n]) || !(o[n] != o[n]);  // nothing written past n
    }
  CHECK(bad == 0, "%d elements differ from the scalar formula", bad);
}

// The noise-consuming ops must compute, bit for bit, the float formula of the CUDA kernels (each
// product and sum rounded on its own) over exactly fill_normal's noise — on AVX-512 CPUs the
// fused path never stores that noise, so this is its only exact check.
static void test_noise_ops_bitwise_formula() {
  Section s("mutations, renoise, ddim_step bitwise == their float formula over fill_normal's noise");
  using detail::fadd;
  using detail::fmul;
  int bad = 0;
  for (int64_t D : {1, 5, 31, 32, 100, 128, 129, 511, 512, 513, 1029, 4096}) {
    const int64_t P = 3, C = 4;
    const uint64_t seed = g_rng();
    const int64_t step = int64_t(g_rng() % 1000);
    auto ids = rand_ids(C);
    auto x = rand_floats(C * D), y = rand_floats(C * D), parents = rand_floats(P * D);
    std::vector<int64_t> idx(C);
    for (auto& i : idx) i = int64_t(g_rng() % P);
    std::vector<float> sv(C), sf(C), st(C);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    for (int64_t k = 0; k < C; ++k) {
      sv[k] = unit(g_rng);
      sf[k] = unit(g_rng);
      st[k] = sf[k] + (1.0f - sf[k]) * unit(g_rng);
    }
    const float beta = unit(g_rng), eta = 0.5f + unit(g_rng);
    auto z = poisoned(C * D), mg = poisoned(C * D), ma = poisoned(C * D), rn = poisoned(C * D),
         dd = poisoned(C * D);
    std::vector<float> dstd(C);
    fill_normal_cpu(z.data(), C, D, seed, ids.data(), step);
    mutate_gaussian_cpu(parents.data(), P, idx.data(), C, D, beta, seed, ids.data(), step, mg.data());
    mutate_additive_cpu(parents.data(), P, idx.data(), C, D, sv.data(), seed, ids.data(), step, ma.data());
    renoise_cpu(x.data(), C, D, NoisePath::RectifiedFlow, sf.data(), st.data(), seed, ids.data(), step,
                rn.data());
    // DDIM from σ_t down to σ_f: a stochastic step (s > 0) for every row.
    ddim_step_cpu(x.data(), y.data(), C, D, NoisePath::RectifiedFlow, st.data(), sf.data(), eta, seed,
                  ids.data(), step, dd.data(), dstd.data());
    const float a = detail::fsqrt(detail::fsub(1.0f, fmul(beta, beta)));
    for (int64_t k = 0; k < C; ++k) {
      const auto rc = detail::renoise_coef(0, sf[k], st[k]);
      const auto dc = detail::ddim_coef(0, st[k], sf[k], eta);
      for (int64_t e = 0; e < D; ++e) {
        const int64_t at = k * D + e;
        const float p = parents[idx[k] * D + e], zz = z[at];
        const float want[4] = {fadd(fmul(a, p), fmul(beta, zz)), fadd(p, fmul(sv[k], zz)),
                               fadd(fmul(rc.scale, x[at]), fmul(rc.std, zz)),
                               dc.s == 0.0f ? dd[at]
                                            : fadd(fadd(fmul(dc.c_x0, x[at]), fmul(dc.c_eps, y[at])),
                                                   fmul(dc.s, zz))};
        const float got[4] = {mg[at], ma[at], rn[at], dd[at]};
        for (int o = 0; o < 4; ++o) bad += std::memcmp(&want[o], &got[o], 4) != 0;
      }
    }
  }
  CHECK(bad == 0, "%d elements differ from the formula", bad);
}

// Standard normal CDF.
static double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
// KS statistic vs N(0,1).
static double ks_normal(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const double n = double(v.size());
  double d = 0.0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double f = Phi(v[i]);
    d = std::max(d, std::max(f - double(i) / n, double(i + 1) / n - f));
  }
  return d;
}
struct Moments {
  double mean, var, skew, kurt;
};
static Moments moments(const std::vector<double>& v) {
  const double n = double(v.size());
  double m = 0;
  for (double x : v) m += x;
  m /= n;
  double m2 = 0, m3 = 0, m4 = 0;
  for (double x : v) {
    const double d = x - m;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return {m, m2, m3 / std::pow(m2, 1.5), m4 / (m2 * m2)};
}
static void check_standard_normal(const std::vector<double>& v, const char* what) {
  const double n = double(v.size());
  const Moments mo = moments(v);
  const double ks = ks_normal(v);
  // Family-wise alpha = 0.001 over the eight KS tests of this file (1.25e-4 each:
  // sqrt(-ln(6.25e-5) / 2) = 2.200). Over 200 fresh seeds, sqrt(n)·KS of fill_normal averaged
  // 0.85-0.90 per lane, as the Kolmogorov distribution's 0.869 (session 3).
  const double ks_crit = 2.200 / std::sqrt(n);
  std::printf("      %s: n=%.0f mean=%.2e var=%.5f skew=%.2e kurt=%.4f KS=%.2e (crit %.2e)\n",
              what, n, mo.mean, mo.var, mo.skew, mo.kurt, ks, ks_crit);
  CHECK(std::fabs(mo.mean) < 5.0 / std::sqrt(n), "%s mean %g", what, mo.mean);
  CHECK(std::fabs(mo.var - 1.0) < 5.0 * std::sqrt(2.0 / n), "%s var %g", what, mo.var);
  CHECK(std::fabs(mo.skew) < 5.0 * std::sqrt(6.0 / n), "%s skew %g", what, mo.skew);
  CHECK(std::fabs(mo.kurt - 3.0) < 5.0 * std::sqrt(24.0 / n), "%s kurt %g", what, mo.kurt);
  CHECK(ks < ks_crit, "%s KS %g >= %g", what, ks, ks_crit);
}

static void test_normal_statistics() {
  Section s("normal statistics: mean/var/skew/kurt/KS, per-lane, stream independence");
  const int64_t rows = 64, dim = 1 << 15;  // 2M draws
  std::vector<float> z(rows * dim);
  auto ids = rand_ids(rows);
  fill_normal_cpu(z.data(), rows, dim, 2024, ids.data(), 7);
  std::vector<double> all(z.begin(), z.end());
  check_standard_normal(all, "all");
  for (int lane = 0; lane < 4; ++lane) {
    std::vector<double> l;
    for (size_t i = lane; i < z.size(); i += 4) l.push_back(z[i]);
    char name[32];
    std::snprintf(name, sizeof name, "lane %d", lane);
    check_standard_normal(l, name);
  }
  // Pair independence inside Box–Muller (lane0 vs lane1) and across streams.
  auto corr = [](const float* a, const float* b, int64_t n, int64_t sa, int64_t sb) {
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; ++i) {
      sab += double(a[i * sa]) * b[i * sb];
      saa += double(a[i * sa]) * a[i * sa];
      sbb += double(b[i * sb]) * b[i * sb];
    }
    return sab / std::sqrt(saa * sbb);
  };
  const double lim = 5.0 / std::sqrt(double(dim));
  double worst = 0;
  for (int r = 0; r + 1 < 16; ++r) worst = std::max(worst, std::fabs(corr(&z[r * dim], &z[(r + 1) * dim], dim, 1, 1)));
  CHECK(worst < lim, "adjacent ids correlate: %g", worst);
  const double c01 = corr(&z[0], &z[1], dim / 2, 2, 2);
  CHECK(std::fabs(c01) < 5.0 / std::sqrt(dim / 2.0), "lane0/lane1 correlate %g", c01);
  // Same id, different steps / seeds / consecutive ids: uncorrelated.
  std::vector<float> a(dim), b(dim), c(dim), d(dim);
  const int64_t id0 = 100, id1 = 101;
  fill_normal_cpu(a.data(), 1, dim, 5, &id0, 0);
  fill_normal_cpu(b.data(), 1, dim, 5, &id0, 1);
  fill_normal_cpu(c.data(), 1, dim, 6, &id0, 0);
  fill_normal_cpu(d.data(), 1, dim, 5, &id1, 0);
  CHECK(std::fabs(corr(a.data(), b.data(), dim, 1, 1)) < lim, "steps correlate");
  CHECK(std::fabs(corr(a.data(), c.data(), dim, 1, 1)) < lim, "seeds correlate");
  CHECK(std::fabs(corr(a.data(), d.data(), dim, 1, 1)) < lim, "ids correlate");
  // Lag correlation within a row.
  CHECK(std::fabs(corr(a.data(), a.data() + 1, dim - 1, 1, 1)) < lim, "lag-1 correlation");
  CHECK(std::fabs(corr(a.data(), a.data() + 4, dim - 4, 1, 1)) < lim, "lag-4 correlation");
  // Uniform statistics: mean 1/2, var 1/12, in (0, 1].
  std::vector<float> u(1 << 20);
  fill_uniform_cpu(u.data(), 1, int64_t(u.size()), 77, &id0, 3);
  double m = 0, v = 0, mn = 1, mx = 0;
  for (float x : u) {
    m += x;
    mn = std::min<double>(mn, x);
    mx = std::max<double>(mx, x);
  }
  m /= u.size();
  for (float x : u) v += (x - m) * (x - m);
  v /= u.size();
  CHECK(std::fabs(m - 0.5) < 5 * std::sqrt(1.0 / 12 / u.size()), "uniform mean %g", m);
  CHECK(std::fabs(v - 1.0 / 12) < 1e-3, "uniform var %g", v);
  CHECK(mn > 0 && mx <= 1, "uniform range [%g, %g]", mn, mx);
}

static void test_layout_and_thread_invariance() {
  Section s("noise independent of batch layout; all ops bitwise thread-count invariant");
  // Layout: the same (id, step) gives the same row whatever the batch around it.
  const int64_t dim = 777;
  std::vector<int64_t> ids = {11, 4, 99, 12345678901LL, 0};
  std::vector<float> batch(ids.size() * dim);
  fill_normal_cpu(batch.data(), int64_t(ids.size()), dim, 31, ids.data(), 2);
  bool ok = true;
  for (size_t r = 0; r < ids.size(); ++r) {
    std::vector<float> one(dim);
    fill_normal_cpu(one.data(), 1, dim, 31, &ids[r], 2);
    ok = ok && std::memcmp(one.data(), &batch[r * dim], dim * 4) == 0;
  }
  CHECK(ok, "row noise depends on batch layout");
  // Reversed order.
  std::vector<int64_t> rev(ids.rbegin(), ids.rend());
  std::vector<float> batch2(ids.size() * dim);
  fill_normal_cpu(batch2.data(), int64_t(ids.size()), dim, 31, rev.data(), 2);
  ok = true;
  for (size_t r = 0; r < ids.size(); ++r)
    ok = ok && std::memcmp(&batch2[r * dim], &batch[(ids.size() - 1 - r) * dim], dim * 4) == 0;
  CHECK(ok, "reversed batch differs");
  // Mutation of a child equals the same child computed alone.
  const int64_t P = 6, C = 9, D = 1031;
  auto parents = rand_floats(P * D);
  std::vector<int64_t> idx(C), cids = rand_ids(C);
  for (auto& i : idx) i = int64_t(g_rng() % P);
  std::vector<float> full(C * D);
  mutate_gaussian_cpu(parents.data(), P, idx.data(), C, D, 0.3f, 8, cids.data(), 4, full.data());
  ok = true;
  for (int64_t k = 0; k < C; ++k) {
    std::vector<float> one(D);
    mutate_gaussian_cpu(parents.data(), P, &idx[k], 1, D, 0.3f, 8, &cids[k], 4, one.data());
    ok = ok && std::memcmp(one.data(), &full[k * D], D * 4) == 0;
  }
  CHECK(ok, "mutation depends on batch layout");

  // Thread counts: every op, results bitwise equal for 1, 2, 3, 5 threads.
  const int64_t R = 13, Dm = 70001;  // big enough to go parallel, odd sizes
  auto x = rand_floats(R * Dm), v1 = rand_floats(R * Dm), v2 = rand_floats(R * Dm);
  auto rids = rand_ids(R);
  std::vector<int64_t> pidx(R);
  for (auto& i : pidx) i = int64_t(g_rng() % R);
  std::vector<float> sf(R), st(R), sadd(R);
  for (int64_t b = 0; b < R; ++b) {
    sf[b] = float(b) / (2 * R);
    st[b] = sf[b] + 0.3f;
    sadd[b] = 0.1f * b;
  }
  auto lw = rand_floats(300000, -20.f, 5.f);
  auto run_all = [&]() {
    std::vector<std::vector<float>> f;
    std::vector<std::vector<int64_t>> ii;
    std::vector<float> o(R * Dm), o2(R);
    fill_normal_cpu(o.data(), R, Dm, 1, rids.data(), 2);
    f.push_back(o);
    fill_uniform_cpu(o.data(), R, Dm, 1, rids.data(), 2);
    f.push_back(o);
    mutate_gaussian_cpu(x.data(), R, pidx.data(), R, Dm, 0.2f, 3, rids.data(), 1, o.data());
    f.push_back(o);
    mutate_additive_cpu(x.data(), R, pidx.data(), R, Dm, sadd.data(), 3, rids.data(), 1, o.data());
    f.push_back(o);
    sphere_neighbours_cpu(x.data(), R, Dm, 0.7f, 3, rids.data(), 1, o.data());
    f.push_back(o);
    renoise_cpu(x.data(), R, Dm, NoisePath::VP, sf.data(), st.data(), 3, rids.data(), 1, o.data());
    f.push_back(o);
    euler_step_cpu(x.data(), v1.data(), R, Dm, st.data(), sf.data(), o.data());
    f.push_back(o);
    heun_combine_cpu(x.data(), v1.data(), v2.data(), R, Dm, st.data(), sf.data(), o.data());
    f.push_back(o);
    ddim_step_cpu(x.data(), v1.data(), R, Dm, NoisePath::RectifiedFlow, st.data(), sf.data(), 0.8f,
                  3, rids.data(), 1, o.data(), o2.data());
    f.push_back(o);
    f.push_back(o2);
    std::vector<float> tv(R * 50);
    std::vector<int64_t> ti(R * 50);
    topk_segments_cpu(x.data(), R, Dm, 50, tv.data(), ti.data());
    f.push_back(tv);
    ii.push_back(ti);
    std::vector<int64_t> w(5000);
    tournament_select_cpu(x.data(), R * Dm, 5000, 7, 9, 2, w.data());
    ii.push_back(w);
    resample_multinomial_cpu(lw.data(), int64_t(lw.size()), 5000, 9, 2, w.data());
    ii.push_back(w);
    resample_systematic_cpu(lw.data(), int64_t(lw.size()), 5000, 9, 2, w.data());
    ii.push_back(w);
    const double ess = effective_sample_size_cpu(lw.data(), int64_t(lw.size()));
    std::vector<float> essv(2);
    std::memcpy(essv.data(), &ess, 8);
    f.push_back(essv);
    return std::make_pair(f, ii);
  };
  set_num_threads(1);
  auto base = run_all();
  const char* names[] = {"fill_normal", "fill_uniform", "mutate_gaussian", "mutate_additive",
                         "sphere", "renoise", "euler", "heun", "ddim", "ddim_std", "topk_values",
                         "ess"};
  const char* inames[] = {"topk_idx", "tournament", "multinomial", "systematic"};
  for (int nt : {2, 3, 5}) {
    set_num_threads(nt);
    auto got = run_all();
    for (size_t i = 0; i < base.first.size(); ++i)
      CHECK(same_bits(base.first[i], got.first[i]), "%s differs with %d threads", names[i], nt);
    for (size_t i = 0; i < base.second.size(); ++i)
      CHECK(base.second[i] == got.second[i], "%s differs with %d threads", inames[i], nt);
  }
  set_num_threads(0);
  CHECK(get_num_threads() >= 1, "get_num_threads");
}

// ------------------------------------------------------------------------------------------------
static void test_mutate_gaussian() {
  Section s("mutate_gaussian vs float64 reference; keeps N(0,1)");
  double max_err = 0;
  for (const Shape& sh : kShapes) {
    for (float beta : {0.0f, 0.2f, 0.77f, 1.0f}) {
      const int64_t P = 1 + int64_t(g_rng() % 7), C = sh.rows, D = sh.dim;
      auto parents = rand_floats(P * D);
      std::vector<int64_t> idx(C);
      for (auto& i : idx) i = int64_t(g_rng() % P);
      auto cids = rand_ids(C);
      const uint64_t seed = g_rng();
      const int64_t step = int64_t(g_rng() % 50);
      auto out = poisoned(C * D);
      mutate_gaussian_cpu(parents.data(), P, idx.data(), C, D, beta, seed, cids.data(), step,
                          out.data());
      const double a = std::sqrt(1.0 - double(beta) * beta);
      int bad = 0;
      for (int64_t k = 0; k < C; ++k) {
        auto z = ref_noise_row(seed, cids[k], step, D);
        for (int64_t e = 0; e < D; ++e) {
          const double p = parents[idx[k] * D + e];
          const double ref = a * p + beta * z[e];
          const double err = std::fabs(out[k * D + e] - ref);
          const double tol = 4e-6 + 3e-7 * (std::fabs(a * p) + std::fabs(beta * z[e]));
          bad += !(err <= tol);
          if (err > max_err || err != err) max_err = err;
        }
      }
      CHECK(bad == 0, "%lldx%lld beta=%g: %d bad", (long long)C, (long long)D, beta, bad);
    }
  }
  std::printf("      max abs err = %.3g\n", max_err);
  // Statistics: N(0,1) parents -> N(0,1) children (elementwise over many children).
  const int64_t P = 8, C = 64, D = 1 << 14;
  std::vector<float> parents(P * D), out(C * D);
  fill_normal_cpu(parents.data(), P, D, 999, nullptr, 0);
  std::vector<int64_t> idx(C), cids(C);
  for (int64_t k = 0; k < C; ++k) {
    idx[k] = k % P;
    cids[k] = 1000 + k;
  }
  mutate_gaussian_cpu(parents.data(), P, idx.data(), C, D, 0.2f, 5, cids.data(), 1, out.data());
  // Children of different parents are independent N(0,1); children sharing a parent correlate
  // by 1-β² by construction, so test the first P children (distinct parents) and the population.
  std::vector<double> v(out.begin(), out.begin() + P * D);
  check_standard_normal(v, "children of distinct parents");
  std::vector<double> all(out.begin(), out.end());
  const Moments mo = moments(all);
  CHECK(std::fabs(mo.var - 1.0) < 0.02, "population var %g", mo.var);
  // Correlation child vs its parent = sqrt(1-β²).
  double sab = 0, saa = 0, sbb = 0;
  for (int64_t e = 0; e < D; ++e) {
    sab += double(out[e]) * parents[e];
    saa += double(out[e]) * out[e];
    sbb += double(parents[e]) * parents[e];
  }
  const double c = sab / std::sqrt(saa * sbb);
  CHECK(std::fabs(c - std::sqrt(1 - 0.04)) < 5.0 / std::sqrt(double(D)), "corr %g", c);
}

static void test_mutate_additive() {
  Section s("mutate_additive vs float64 reference");
  double max_err = 0;
  for (const Shape& sh : kShapes) {
    const int64_t P = 1 + int64_t(g_rng() % 5), C = sh.rows, D = sh.dim;
    auto parents = rand_floats(P * D);
    std::vector<int64_t> idx(C);
    for (auto& i : idx) i = int64_t(g_rng() % P);
    auto cids = rand_ids(C);
    auto sv = rand_floats(C, 0.f, 1.5f);
    if (C > 1) sv[0] = 0.f;
    const uint64_t seed = g_rng();
    auto out = poisoned(C * D);
    mutate_additive_cpu(parents.data(), P, idx.data(), C, D, sv.data(), seed, cids.data(), 17,
                        out.data());
    int bad = 0;
    for (int64_t k = 0; k < C; ++k) {
      auto z = ref_noise_row(seed, cids[k], 17, D);
      for (int64_t e = 0; e < D; ++e) {
        const double p = parents[idx[k] * D + e];
        const double ref = p + double(sv[k]) * z[e];
        const double err = std::fabs(out[k * D + e] - ref);
        bad += !(err <= 4e-6 + 3e-7 * (std::fabs(p) + std::fabs(sv[k] * z[e])));
        if (err > max_err || err != err) max_err = err;
      }
      if (sv[k] == 0.f)
        bad += std::memcmp(&out[k * D], &parents[idx[k] * D], D * 4) != 0;  // exact copy
    }
    CHECK(bad == 0, "%lldx%lld: %d bad", (long long)C, (long long)D, bad);
  }
  std::printf("      max abs err = %.3g\n", max_err);
}

static void test_sphere() {
  Section s("sphere_neighbours vs float64 reference; cos = tau, norm = |x|");
  double max_err = 0, max_cos = 0, max_norm = 0;
  for (const Shape& sh : kShapes) {
    if (sh.dim < 2) continue;
    for (float tau : {-0.9f, 0.0f, 0.5f, 0.95f, 1.0f}) {
      const int64_t B = sh.rows, D = sh.dim;
      auto x = rand_floats(B * D, -3.f, 3.f);
      auto ids = rand_ids(B);
      const uint64_t seed = g_rng();
      auto out = poisoned(B * D);
      sphere_neighbours_cpu(x.data(), B, D, tau, seed, ids.data(), 3, out.data());
      int bad = 0;
      for (int64_t b = 0; b < B; ++b) {
        auto v = ref_noise_row(seed, ids[b], 3, D);
        double xx = 0, xv = 0;
        for (int64_t e = 0; e < D; ++e) {
          xx += double(x[b * D + e]) * x[b * D + e];
          xv += double(x[b * D + e]) * v[e];
        }
        const double r = std::sqrt(xx);
        std::vector<double> w(D);
        double ww = 0;
        for (int64_t e = 0; e < D; ++e) {
          w[e] = v[e] - xv / xx * x[b * D + e];
          ww += w[e] * w[e];
        }
        const double wn = std::sqrt(ww);
        double oo = 0, ox = 0;
        for (int64_t e = 0; e < D; ++e) {
          const double u = x[b * D + e] / r;
          const double ref = r * (tau * u + std::sqrt(1.0 - double(tau) * tau) * w[e] / wn);
          const double got = out[b * D + e];
          const double err = std::fabs(got - ref);
          // Tolerance: relative to the row scale r/sqrt(D) (the noise has |err| ~ 2e-6).
          bad += !(err <= 1e-5 * (std::fabs(ref) + r / std::sqrt(double(D))) + 1e-6);
          if (err > max_err || err != err) max_err = err;
          oo += got * got;
          ox += got * x[b * D + e];
        }
        const double cosv = ox / std::sqrt(oo * xx);
        const double nrm = std::sqrt(oo) / r;
        max_cos = std::max(max_cos, std::fabs(cosv - tau));
        max_norm = std::max(max_norm, std::fabs(nrm - 1));
        bad += !(std::fabs(cosv - tau) <= 2e-6);
        bad += !(std::fabs(nrm - 1) <= 2e-6);
      }
      CHECK(bad == 0, "%lldx%lld tau=%g: %d bad", (long long)B, (long long)D, tau, bad);
    }
  }
  std::printf("      max abs err = %.3g, max |cos - tau| = %.3g, max |norm ratio - 1| = %.3g\n",
              max_err, max_cos, max_norm);
  // x = 0 -> 0; dim = 1 -> tau*x; in place.
  std::vector<float> z(8, 0.f), o = poisoned(8);
  sphere_neighbours_cpu(z.data(), 2, 4, 0.3f, 1, nullptr, 0, o.data());
  bool zero = true;
  for (float f : o) zero = zero && f == 0.f;
  CHECK(zero, "zero pivot must give zero");
  std::vector<float> one = {2.f}, o1(1);
  sphere_neighbours_cpu(one.data(), 1, 1, 0.5f, 1, nullptr, 0, o1.data());
  CHECK(o1[0] == 1.f, "dim 1: %g", o1[0]);
  auto xi = rand_floats(3 * 100);
  auto xo = xi;
  std::vector<float> sep(300);
  sphere_neighbours_cpu(xi.data(), 3, 100, 0.4f, 2, nullptr, 1, sep.data());
  sphere_neighbours_cpu(xo.data(), 3, 100, 0.4f, 2, nullptr, 1, xo.data());
  CHECK(same_bits(sep, xo), "in-place differs");
}

static void test_renoise() {
  Section s("renoise vs float64 reference (both paths), identities");
  double max_err = 0;
  for (int path : {0, 1}) {
    for (const Shape& sh : kShapes) {
      const int64_t B = sh.rows, D = sh.dim;
      auto x = rand_floats(B * D);
      std::vector<float> sf(B), st(B);
      std::uniform_real_distribution<float> d01(0.f, 1.f);
      for (int64_t b = 0; b < B; ++b) {
        float a = d01(g_rng), c = d01(g_rng);
        if (b == 1) a = c;           // equal
        if (b == 2) a = 0.f;         // from 0
        if (b == 3) a = c = 1.f;     // a_f = 0
        if (b == 4) c = 1.f;         // to pure noise
        sf[b] = std::min(a, c);
        st[b] = std::max(a, c);
      }
      auto ids = rand_ids(B);
      const uint64_t seed = g_rng();
      auto out = poisoned(B * D);
      renoise_cpu(x.data(), B, D, NoisePath(path), sf.data(), st.data(), seed, ids.data(), 5,
                  out.data());
      int bad = 0;
      for (int64_t b = 0; b < B; ++b) {
        const double af = ref_alpha(path, sf[b]), at = ref_alpha(path, st[b]);
        double ratio = 1, sd = 0;
        if (af != 0) {
          ratio = at / af;
          sd = std::sqrt(std::max(0.0, double(st[b]) * st[b] - ratio * ratio * sf[b] * sf[b]));
        }
        auto z = ref_noise_row(seed, ids[b], 5, D);
        for (int64_t e = 0; e < D; ++e) {
          const double ref = ratio * x[b * D + e] + sd * z[e];
          const double err = std::fabs(out[b * D + e] - ref);
          bad += !(err <= 4e-6 + 4e-7 * (std::fabs(ratio * x[b * D + e]) + std::fabs(sd * z[e])));
          if (err > max_err || err != err) max_err = err;
        }
        if (sf[b] == st[b]) bad += std::memcmp(&out[b * D], &x[b * D], D * 4) != 0;
      }
      CHECK(bad == 0, "path %d %lldx%lld: %d bad", path, (long long)B, (long long)D, bad);
    }
  }
  std::printf("      max abs err = %.3g\n", max_err);
  // The renoised marginal: x0 = 0 at sigma_from = 0 -> noise of std sigma_to.
  const int64_t D = 1 << 18;
  std::vector<float> x0(D, 0.f), out(D);
  const float f0 = 0.f, t0 = 0.6f;
  renoise_cpu(x0.data(), 1, D, NoisePath::RectifiedFlow, &f0, &t0, 3, nullptr, 0, out.data());
  std::vector<double> v(D);
  for (int64_t i = 0; i < D; ++i) v[i] = out[i] / 0.6;
  check_standard_normal(v, "renoise 0 -> 0.6 / 0.6");
}

static void test_row_combine() {
  Section s("row_combine vs float64 reference (k = 1..4, in place); argument checks");
  std::uniform_real_distribution<double> dc(-3.0, 3.0);
  for (const Shape& sh : kShapes) {
    const int64_t B = sh.rows, D = sh.dim;
    for (int k = 1; k <= kRowCombineMax; ++k) {
      auto x = rand_floats(B * D), y = rand_floats(B * D);
      std::vector<double> c(B * k * 2);
      for (auto& v : c) v = dc(g_rng);
      std::vector<std::vector<float>> o;
      std::vector<float*> ptrs;
      for (int j = 0; j < k; ++j) o.push_back(poisoned(B * D));
      for (auto& v : o) ptrs.push_back(v.data());
      row_combine_cpu(x.data(), y.data(), B, D, c.data(), k, ptrs.data());
      int bad = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int j = 0; j < k; ++j)
          for (int64_t e = 0; e < D; ++e) {
            const size_t i = b * D + e;
            const double a = float(c[(b * k + j) * 2]), d = float(c[(b * k + j) * 2 + 1]);
            const double ref = a * x[i] + d * y[i];
            bad += !(std::fabs(o[j][i] - ref) <= 1e-6 * (std::fabs(a * x[i]) + std::fabs(d * y[i]) + 1e-3));
          }
      CHECK(bad == 0, "row_combine %lldx%lld k=%d: %d bad", (long long)B, (long long)D, k, bad);
      // In place: the first output over x gives the same values.
      auto x2 = x;
      std::vector<float*> inplace = ptrs;
      inplace[0] = x2.data();
      row_combine_cpu(x2.data(), y.data(), B, D, c.data(), k, inplace.data());
      CHECK(x2 == o[0], "row_combine in place %lldx%lld k=%d", (long long)B, (long long)D, k);
    }
  }
  std::vector<float> a(8, 1.f), out(8);
  std::vector<double> c(2 * 5, 1.0);
  float* o1[1] = {out.data()};
  float* o0[1] = {nullptr};
  CHECK(throws_invalid([&] { row_combine_cpu(a.data(), a.data(), 2, 4, c.data(), 0, o1); }), "k = 0");
  CHECK(throws_invalid([&] { row_combine_cpu(a.data(), a.data(), 2, 4, c.data(), 5, o1); }), "k = 5");
  CHECK(throws_invalid([&] { row_combine_cpu(a.data(), a.data(), 2, 4, c.data(), 1, o0); }), "null output");
  CHECK(throws_invalid([&] { row_combine_cpu(a.data(), a.data(), -1, 4, c.data(), 1, o1); }), "rows < 0");
}

static void test_steps() {
  Section s("euler_step, heun_combine, ddim_step vs float64 reference; edge cases");
  double max_err = 0;
  for (const Shape& sh : kShapes) {
    const int64_t B = sh.rows, D = sh.dim;
    auto x = rand_floats(B * D), v1 = rand_floats(B * D), v2 = rand_floats(B * D);
    auto sf = rand_floats(B, 0.f, 1.f), st = rand_floats(B, 0.f, 1.f);
    auto o1 = poisoned(B * D), o2 = poisoned(B * D);
    euler_step_cpu(x.data(), v1.data(), B, D, sf.data(), st.data(), o1.data());
    heun_combine_cpu(x.data(), v1.data(), v2.data(), B, D, sf.data(), st.data(), o2.data());
    int bad = 0;
    for (int64_t b = 0; b < B; ++b) {
      const double dt = double(st[b]) - sf[b];
      for (int64_t e = 0; e < D; ++e) {
        const size_t i = b * D + e;
        const double re = x[i] + dt * v1[i];
        const double rh = x[i] + dt * 0.5 * (double(v1[i]) + v2[i]);
        const double e1 = std::fabs(o1[i] - re), e2 = std::fabs(o2[i] - rh);
        bad += !(e1 <= 1e-6 * (std::fabs(x[i]) + std::fabs(dt * v1[i]) + 1e-3));
        bad += !(e2 <= 1e-6 * (std::fabs(x[i]) + std::fabs(dt) * (std::fabs(v1[i]) + std::fabs(v2[i])) + 1e-3));
        max_err = std::max({max_err, e1, e2});
      }
    }
    CHECK(bad == 0, "euler/heun %lldx%lld: %d bad", (long long)B, (long long)D, bad);
  }
  std::printf("      euler/heun max abs err = %.3g\n", max_err);
  max_err = 0;
  for (int path : {0, 1}) {
    for (float eta : {0.0f, 0.5f, 1.0f, 1.7f}) {
      for (const Shape& sh : kShapes) {
        const int64_t B = sh.rows, D = sh.dim;
        auto x0 = rand_floats(B * D), ep = rand_floats(B * D);
        std::vector<float> sf(B), st(B);
        std::uniform_real_distribution<float> d01(0.f, 1.f);
        for (int64_t b = 0; b < B; ++b) {
          float a = d01(g_rng), c = d01(g_rng);
          sf[b] = std::max(a, c);
          st[b] = std::min(a, c);
          if (b == 1) st[b] = 0.f;                 // to clean
          if (b == 2) sf[b] = st[b] = 0.f;         // from 0
          if (b == 3) sf[b] = st[b] = 1.f;         // a_to = 0
          if (b == 4) std::swap(sf[b], st[b]);     // upward: clamps
          if (b == 5) sf[b] = 1.f;                 // from pure noise
        }
        auto ids = rand_ids(B);
        const uint64_t seed = g_rng();
        auto out = poisoned(B * D), sd = poisoned(B);
        ddim_step_cpu(x0.data(), ep.data(), B, D, NoisePath(path), sf.data(), st.data(), eta,
                      seed, ids.data(), 9, out.data(), sd.data());
        int bad = 0;
        for (int64_t b = 0; b < B; ++b) {
          const double af = ref_alpha(path, sf[b]), at = ref_alpha(path, st[b]);
          double s = 0;
          if (eta != 0 && sf[b] != 0 && st[b] != 0 && at != 0) {
            const double q = af * st[b] / (at * sf[b]);
            s = eta * st[b] * std::sqrt(std::max(0.0, 1 - q * q));
          }
          const double ce = std::sqrt(std::max(0.0, double(st[b]) * st[b] - s * s));
          bad += !(std::fabs(sd[b] - s) <= 1e-6 * (s + 1e-6));
          auto z = ref_noise_row(seed, ids[b], 9, D);
          for (int64_t e = 0; e < D; ++e) {
            const size_t i = b * D + e;
            const double ref = at * x0[i] + ce * ep[i] + s * z[e];
            const double err = std::fabs(out[i] - ref);
            bad += !(err <= 4e-6 + 5e-7 * (std::fabs(at * x0[i]) + std::fabs(ce * ep[i]) +
                                            std::fabs(s * z[e])));
            if (err > max_err || err != err) max_err = err;
          }
          // Exact edge cases.
          if (st[b] == 0.f) bad += std::memcmp(&out[b * D], &x0[b * D], D * 4) != 0;
          if (st[b] == 1.f)
            for (int64_t e = 0; e < D; ++e) bad += out[b * D + e] != ep[b * D + e];
        }
        CHECK(bad == 0, "ddim path %d eta %g %lldx%lld: %d bad", path, eta, (long long)B,
              (long long)D, bad);
      }
    }
  }
  std::printf("      ddim max abs err = %.3g\n", max_err);
  // eta = 0 is deterministic: independent of the seed, equals a_t x0 + sigma_t eps.
  const int64_t B = 3, D = 257;
  auto x0 = rand_floats(B * D), ep = rand_floats(B * D);
  std::vector<float> sf = {0.9f, 0.5f, 0.3f}, st = {0.7f, 0.2f, 0.1f};
  std::vector<float> a(B * D), b2(B * D), sd(B);
  ddim_step_cpu(x0.data(), ep.data(), B, D, NoisePath::VP, sf.data(), st.data(), 0.f, 1, nullptr,
                0, a.data(), sd.data());
  ddim_step_cpu(x0.data(), ep.data(), B, D, NoisePath::VP, sf.data(), st.data(), 0.f, 2, nullptr,
                5, b2.data(), nullptr);
  CHECK(same_bits(a, b2), "eta = 0 depends on the seed");
  CHECK(sd[0] == 0 && sd[1] == 0 && sd[2] == 0, "eta = 0 std");
  // VP: the generalised formula equals the classic DDIM sigma_t (alpha-bar form).
  {
    const double s_f = 0.8, s_t = 0.5, eta = 1.0;
    const double abf = 1 - s_f * s_f, abt = 1 - s_t * s_t;  // alpha-bar
    const double classic = eta * std::sqrt((1 - abt) / (1 - abf)) * std::sqrt(1 - abf / abt);
    const float ff = float(s_f), tt = float(s_t);
    float o[1], so[1];
    const float xz = 0.f, ez = 0.f;
    ddim_step_cpu(&xz, &ez, 1, 1, NoisePath::VP, &ff, &tt, 1.0f, 1, nullptr, 0, o, so);
    CHECK(std::fabs(so[0] - classic) < 1e-6, "VP DDIM std %g vs classic %g", so[0], classic);
  }
  // DDIM with eta = 1 from the exact posterior keeps the marginal: x0 = 0, eps = N(0,1) at
  // sigma_from -> out should be N(0, sigma_to^2) (RF path, the generalised posterior).
  {
    const int64_t N = 1 << 18;
    std::vector<float> xz(N, 0.f), e(N), o(N);
    fill_normal_cpu(e.data(), 1, N, 4242, nullptr, 0);
    const float f = 0.8f, t = 0.4f;
    ddim_step_cpu(xz.data(), e.data(), 1, N, NoisePath::RectifiedFlow, &f, &t, 1.f, 7, nullptr, 1,
                  o.data(), nullptr);
    std::vector<double> v(N);
    for (int64_t i = 0; i < N; ++i) v[i] = o[i] / 0.4;
    check_standard_normal(v, "ddim eta=1 marginal / sigma_to");
  }
}

// ------------------------------------------------------------------------------------------------
static double rank_val(float v) { return v != v ? -INFINITY : double(v); }

static void test_topk() {
  Section s("topk_segments vs reference sort (NaN, ties, -0/+0, k = 0..L)");
  struct Case {
    int64_t S, L, k;
  };
  const Case cases[] = {{1, 1, 1}, {1, 10, 3},   {4, 10, 10}, {3, 100, 1},  {5, 1000, 7},
                        {2, 1000, 500}, {1, 100000, 50}, {1, 300000, 1}, {2, 200000, 100}, {1, 70000, 1000}, {7, 33, 0}, {64, 64, 16}, {2, 5000, 4999}};
  for (const Case& c : cases) {
    for (int variant = 0; variant < 3; ++variant) {
      std::vector<float> v = rand_floats(c.S * c.L, -5.f, 5.f);
      if (variant >= 1) {  // many ties, signed zeros, NaN, infinities
        std::uniform_int_distribution<int> d(0, 9);
        for (auto& x : v) {
          const int r = d(g_rng);
          x = r == 0 ? kNaN : r == 1 ? -0.0f : r == 2 ? 0.0f : r == 3 ? kInf : r == 4 ? -kInf
                                                                                  : float(r % 3);
        }
      }
      if (variant == 2)
        for (auto& x : v) x = kNaN;
      std::vector<float> ov = poisoned(c.S * c.k);
      std::vector<int64_t> oi(c.S * c.k, -7);
      topk_segments_cpu(v.data(), c.S, c.L, c.k, ov.data(), oi.data());
      int bad = 0;
      for (int64_t sg = 0; sg < c.S; ++sg) {
        std::vector<int64_t> order(c.L);
        std::iota(order.begin(), order.end(), 0);
        const float* seg = &v[sg * c.L];
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return rank_val(seg[a]) > rank_val(seg[b]);  // stable: ties keep lower index first
        });
        for (int64_t j = 0; j < c.k; ++j) {
          bad += oi[sg * c.k + j] != order[j];
          bad += fbits(ov[sg * c.k + j]) != fbits(seg[order[j]]);
        }
      }
      CHECK(bad == 0, "S=%lld L=%lld k=%lld variant %d: %d bad", (long long)c.S, (long long)c.L,
            (long long)c.k, variant, bad);
    }
  }
}

static void test_tournament() {
  Section s("tournament_select vs reference (own Philox), selection pressure");
  for (int64_t P : {1, 2, 7, 50, 1000}) {
    for (int64_t ts : {1, 2, 3, 5, 17}) {
      auto fit = rand_floats(P);
      if (P > 3) {
        fit[1] = fit[2];  // a tie
        fit[0] = kNaN;
      }
      const int64_t W = 200;
      const uint64_t seed = g_rng();
      const int64_t step = int64_t(g_rng() % 100);
      std::vector<int64_t> out(W, -1);
      tournament_select_cpu(fit.data(), P, W, ts, seed, step, out.data());
      int bad = 0;
      for (int64_t t = 0; t < W; ++t) {
        int64_t best = -1;
        for (int64_t j = 0; j < ts; ++j) {
          auto r = RefPhilox::block({uint32_t(j / 4), 0xD5000001u, uint32_t(t), uint32_t(step)},
                                    {uint32_t(seed), uint32_t(seed >> 32)});
          const int64_t i = int64_t((uint64_t(r[j % 4]) * uint64_t(P)) >> 32);
          if (best < 0 || rank_val(fit[i]) > rank_val(fit[best]) ||
              (rank_val(fit[i]) == rank_val(fit[best]) && i < best))
            best = i;
        }
        bad += out[t] != best;
      }
      CHECK(bad == 0, "P=%lld ts=%lld: %d bad", (long long)P, (long long)ts, bad);
    }
  }
  // Selection pressure: with size 2, the expected rank quantile of the winner is 2/3.
  const int64_t P = 1000, W = 200000;
  std::vector<float> fit(P);
  for (int64_t i = 0; i < P; ++i) fit[i] = float(i);
  std::vector<int64_t> out(W);
  tournament_select_cpu(fit.data(), P, W, 2, 3, 0, out.data());
  double m = 0;
  for (auto i : out) m += double(i) / (P - 1);
  m /= W;
  CHECK(std::fabs(m - 2.0 / 3.0) < 0.005, "mean winner quantile %g", m);
}

// Reference resampling (sequential double, std::exp).
static std::vector<double> ref_weights(const std::vector<float>& lw) {
  double m = -INFINITY;
  bool any = false;
  for (float x : lw)
    if (x == x) {
      any = true;
      m = std::max(m, double(x));
    }
  std::vector<double> w(lw.size());
  for (size_t i = 0; i < lw.size(); ++i) {
    if (!any || m == -INFINITY) w[i] = 1;
    else if (m == INFINITY) w[i] = lw[i] == kInf;
    else w[i] = lw[i] != lw[i] ? 0.0 : std::exp(double(lw[i]) - m);
  }
  return w;
}
static int64_t ref_search(const std::vector<double>& cdf, double t) {
  const double T = cdf.back();
  for (size_t i = 0; i < cdf.size(); ++i)
    if (t < T ? cdf[i] > t : cdf[i] >= T) return int64_t(i);
  return int64_t(cdf.size()) - 1;
}
static double ref_u53(uint32_t hi, uint32_t lo) {
  const uint64_t b = ((uint64_t(hi) << 32) | lo) >> 12;
  return (double(b) + 0.5) / 4503599627370496.0;  // 2^52
}

static void test_resampling() {
  Section s("resample_multinomial/systematic vs reference; chi-square; ESS; degenerate weights");
  int mismatches = 0, total = 0;
  for (int64_t n : {1, 2, 5, 255, 256, 257, 1000, 5000}) {
    for (int variant = 0; variant < 4; ++variant) {
      auto lw = rand_floats(n, -10.f, 3.f);
      if (variant == 1 && n > 3) {
        lw[0] = kNaN;
        lw[1] = -kInf;
        lw[n - 1] = -kInf;
      }
      if (variant == 2)
        for (auto& x : lw) x = -kInf;  // all zero weights -> uniform
      if (variant == 3 && n > 2) {
        lw[n / 2] = kInf;  // +inf dominates
        lw[0] = kInf;
      }
      const int64_t n_out = 3 * n + 1;
      const uint64_t seed = g_rng();
      const int64_t step = int64_t(g_rng() % 10);
      auto w = ref_weights(lw);
      std::vector<double> cdf(n);
      std::partial_sum(w.begin(), w.end(), cdf.begin());
      const double T = cdf.back();
      std::vector<int64_t> om(n_out, -1), os(n_out, -1);
      resample_multinomial_cpu(lw.data(), n, n_out, seed, step, om.data());
      resample_systematic_cpu(lw.data(), n, n_out, seed, step, os.data());
      auto r0 = RefPhilox::block({0, 0xD5000003u, 0, uint32_t(step)},
                                 {uint32_t(seed), uint32_t(seed >> 32)});
      const double us = ref_u53(r0[0], r0[1]);
      int bad_zero = 0;
      for (int64_t j = 0; j < n_out; ++j) {
        auto r = RefPhilox::block({uint32_t(j / 2), 0xD5000002u, uint32_t((j / 2) >> 32),
                                   uint32_t(step)},
                                  {uint32_t(seed), uint32_t(seed >> 32)});
        const double u = (j % 2) ? ref_u53(r[2], r[3]) : ref_u53(r[0], r[1]);
        mismatches += om[j] != ref_search(cdf, u * T);
        mismatches += os[j] != ref_search(cdf, (j + us) / n_out * T);
        total += 2;
        bad_zero += (om[j] < 0 || om[j] >= n || w[om[j]] == 0);
        bad_zero += (os[j] < 0 || os[j] >= n || w[os[j]] == 0);
      }
      CHECK(bad_zero == 0, "n=%lld variant %d: zero-weight/out-of-range picks %d", (long long)n,
            variant, bad_zero);
      // ESS.
      double s2 = 0;
      for (double x : w) s2 += (x / T) * (x / T);
      const double ess = effective_sample_size_cpu(lw.data(), n);
      CHECK(std::fabs(ess - 1.0 / s2) <= 1e-9 * (1.0 / s2), "ESS %g vs %g", ess, 1.0 / s2);
      CHECK(ess >= 1.0 - 1e-9 && ess <= n * (1 + 1e-9), "ESS range %g", ess);
    }
  }
  CHECK(mismatches == 0, "%d of %d indices differ from the reference", mismatches, total);
  // Chi-square: multinomial frequencies match the weights.
  {
    const int64_t n = 10, N = 200000;
    std::vector<float> lw(n);
    for (int64_t i = 0; i < n; ++i) lw[i] = std::log(float(i + 1)) + 3.0f;  // w ∝ i+1
    std::vector<int64_t> out(N);
    resample_multinomial_cpu(lw.data(), n, N, 2025, 4, out.data());
    std::vector<double> cnt(n, 0);
    for (auto i : out) cnt[i] += 1;
    double chi2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double e = N * (i + 1) / 55.0;
      chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
    }
    std::printf("      multinomial chi2 = %.2f (9 dof, crit 27.88 at 0.001)\n", chi2);
    CHECK(chi2 < 27.88, "chi2 %g", chi2);
    resample_systematic_cpu(lw.data(), n, N, 2025, 4, out.data());
    std::fill(cnt.begin(), cnt.end(), 0);
    for (auto i : out) cnt[i] += 1;
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) bad += std::fabs(cnt[i] - N * (i + 1) / 55.0) > 1.0;
    CHECK(bad == 0, "systematic counts are not floor/ceil of N*w");
  }
  // Multinomial draws over many seeds for a 3-particle case: chi-square too.
  {
    const float lw[3] = {0.f, std::log(2.f), std::log(5.f)};
    std::vector<double> cnt(3, 0);
    const int trials = 30000;
    for (int t = 0; t < trials; ++t) {
      int64_t o;
      resample_multinomial_cpu(lw, 3, 1, uint64_t(t) * 7919u, t, &o);
      cnt[o] += 1;
    }
    const double p[3] = {1 / 8.0, 2 / 8.0, 5 / 8.0};
    double chi2 = 0;
    for (int i = 0; i < 3; ++i) chi2 += std::pow(cnt[i] - trials * p[i], 2) / (trials * p[i]);
    CHECK(chi2 < 13.82, "across-seed chi2 %g (2 dof)", chi2);
  }
}

// ------------------------------------------------------------------------------------------------
static void test_errors() {
  Section s("argument validation throws std::invalid_argument");
  std::vector<float> buf(64, 0.f), out(64);
  std::vector<int64_t> ibuf(64, 0);
  const int64_t bad_idx[2] = {0, 5};
  const float sig_bad_f[1] = {0.5f}, sig_bad_t[1] = {0.4f}, sig_nan[1] = {kNaN},
              sig_big[1] = {1.5f}, sig_ok[1] = {0.5f};
  CHECK(throws_invalid([&] { fill_normal_cpu(out.data(), -1, 4, 0, nullptr, 0); }), "rows<0");
  CHECK(throws_invalid([&] { fill_normal_cpu(nullptr, 1, 4, 0, nullptr, 0); }), "null out");
  CHECK(throws_invalid([&] { fill_uniform_cpu(out.data(), 1, int64_t(1) << 35, 0, nullptr, 0); }),
        "dim >= 2^34");
  CHECK(throws_invalid([&] {
          mutate_gaussian_cpu(buf.data(), 5, bad_idx, 2, 4, 0.2f, 0, nullptr, 0, out.data());
        }),
        "idx out of range");
  CHECK(throws_invalid([&] {
          mutate_gaussian_cpu(buf.data(), 6, bad_idx, 2, 4, 1.5f, 0, nullptr, 0, out.data());
        }),
        "beta > 1");
  CHECK(throws_invalid([&] {
          mutate_gaussian_cpu(buf.data(), 6, bad_idx, 2, 4, kNaN, 0, nullptr, 0, out.data());
        }),
        "beta NaN");
  const int64_t neg_idx[1] = {-1};
  CHECK(throws_invalid([&] {
          mutate_additive_cpu(buf.data(), 6, neg_idx, 1, 4, buf.data(), 0, nullptr, 0, out.data());
        }),
        "negative idx");
  CHECK(throws_invalid([&] {
          sphere_neighbours_cpu(buf.data(), 1, 4, 1.5f, 0, nullptr, 0, out.data());
        }),
        "tau > 1");
  CHECK(throws_invalid([&] {
          renoise_cpu(buf.data(), 1, 4, NoisePath::VP, sig_bad_f, sig_bad_t, 0, nullptr, 0,
                      out.data());
        }),
        "sigma_to < sigma_from");
  CHECK(throws_invalid([&] {
          renoise_cpu(buf.data(), 1, 4, NoisePath::VP, sig_nan, sig_ok, 0, nullptr, 0, out.data());
        }),
        "sigma NaN");
  CHECK(throws_invalid([&] {
          renoise_cpu(buf.data(), 1, 4, NoisePath(2), sig_ok, sig_ok, 0, nullptr, 0, out.data());
        }),
        "bad path");
  CHECK(throws_invalid([&] {
          ddim_step_cpu(buf.data(), buf.data(), 1, 4, NoisePath::VP, sig_big, sig_ok, 0.f, 0,
                        nullptr, 0, out.data(), nullptr);
        }),
        "sigma > 1");
  CHECK(throws_invalid([&] {
          ddim_step_cpu(buf.data(), buf.data(), 1, 4, NoisePath::VP, sig_ok, sig_ok, -1.f, 0,
                        nullptr, 0, out.data(), nullptr);
        }),
        "eta < 0");
  CHECK(throws_invalid([&] { topk_segments_cpu(buf.data(), 1, 4, 5, out.data(), ibuf.data()); }),
        "k > L");
  CHECK(throws_invalid([&] { topk_segments_cpu(buf.data(), 1, 4, -1, out.data(), ibuf.data()); }),
        "k < 0");
  CHECK(throws_invalid([&] { tournament_select_cpu(buf.data(), 4, 2, 0, 0, 0, ibuf.data()); }),
        "tournament_size < 1");
  CHECK(throws_invalid([&] { tournament_select_cpu(buf.data(), 0, 2, 2, 0, 0, ibuf.data()); }),
        "P = 0");
  CHECK(throws_invalid([&] { resample_multinomial_cpu(buf.data(), 4, 0, 0, 0, ibuf.data()); }),
        "n_out = 0");
  CHECK(throws_invalid([&] { resample_systematic_cpu(buf.data(), 0, 3, 0, 0, ibuf.data()); }),
        "n = 0");
  CHECK(throws_invalid([&] { effective_sample_size_cpu(buf.data(), 0); }), "ess n = 0");
  // Validation happens before writing: out untouched on a bad idx.
  std::vector<float> o2(8, 42.f);
  const int64_t idx2[2] = {0, 9};
  try {
    mutate_gaussian_cpu(buf.data(), 6, idx2, 2, 4, 0.2f, 0, nullptr, 0, o2.data());
  } catch (...) {
  }
  bool untouched = true;
  for (float f : o2) untouched = untouched && f == 42.f;
  CHECK(untouched, "output written before the error");
  // Zero-size work is a no-op.
  mutate_gaussian_cpu(nullptr, 0, nullptr, 0, 16, 0.2f, 0, nullptr, 0, nullptr);
  topk_segments_cpu(nullptr, 0, 5, 2, nullptr, nullptr);
  tournament_select_cpu(nullptr, 0, 0, 3, 0, 0, nullptr);
}

// ------------------------------------------------------------------------------------------------
// A few timings (informational; the real benchmark lives in bench/).
static void timings() {
  Section s("timings (informational)");
  const int64_t rows = 16, dim = 1 << 16;  // 1M elements
  std::vector<float> p(rows * dim), o(rows * dim);
  fill_normal_cpu(p.data(), rows, dim, 1, nullptr, 0);
  std::vector<int64_t> idx(rows);
  std::iota(idx.begin(), idx.end(), 0);
  auto time_it = [](auto&& f) {
    f();
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double bytes = 2.0 * 4 * rows * dim;
  const double tc = time_it([&] { std::memcpy(o.data(), p.data(), 4 * rows * dim); });
  const double tm = time_it([&] {
    mutate_gaussian_cpu(p.data(), rows, idx.data(), rows, dim, 0.2f, 1, nullptr, 1, o.data());
  });
  const double tn = time_it([&] { fill_normal_cpu(o.data(), rows, dim, 1, nullptr, 1); });
  std::printf("      %d threads, 1M elements: memcpy %.2f GB/s, mutate_gaussian %.2f GB/s "
              "(%.2f ms), fill_normal %.0f Mnormals/s\n",
              get_num_threads(), bytes / tc / 1e9, bytes / tm / 1e9, tm * 1e3,
              rows * dim / tn / 1e6);
}

int main(int argc, char** argv) {
  const bool with_timings = !(argc > 1 && std::strcmp(argv[1], "--no-timings") == 0);
  std::printf("ds::kernels CPU test (OpenMP threads: %d)\n", get_num_threads());
  test_philox_kat();
  test_uniform_and_normal_vs_reference();
  test_normal_bitwise_vs_scalar_formula();
  test_noise_ops_bitwise_formula();
  test_normal_statistics();
  test_layout_and_thread_invariance();
  test_mutate_gaussian();
  test_mutate_additive();
  test_sphere();
  test_renoise();
  test_steps();
  test_row_combine();
  test_topk();
  test_tournament();
  test_resampling();
  test_errors();
  if (with_timings) timings();
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
