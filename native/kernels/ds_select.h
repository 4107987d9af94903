// ds_select.h — host/device shared pieces of the selection ops (rank keys, weights, draws).
#pragma once

#include "ds_math.h"

namespace ds {
namespace kernels {
namespace detail {

// Composite 64-bit key: rank key of the value in the high word, (2^32-1 - index) in the low word,
// so "larger key" == "earlier in rank order" (higher value, ties -> lower index). Unique per index.
DS_HD uint64_t rank_key64(float v, uint64_t index) {
  return (static_cast<uint64_t>(float_rank_key(v)) << 32) |
         static_cast<uint64_t>(0xFFFFFFFFu - static_cast<uint32_t>(index));
}
DS_HD uint64_t rank_key64_index(uint64_t key) { return 0xFFFFFFFFull - (key & 0xFFFFFFFFull); }

// Entrant j of tournament t.
DS_HD uint32_t tournament_word(uint64_t seed, uint64_t t, uint64_t step, uint64_t j) {
  const U32x4 r = philox4x32_10(static_cast<uint32_t>(j >> 2), kTagTournament,
                                static_cast<uint32_t>(t), static_cast<uint32_t>(step),
                                static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const uint32_t l = static_cast<uint32_t>(j & 3);
  return l == 0 ? r.v0 : l == 1 ? r.v1 : l == 2 ? r.v2 : r.v3;
}

// ---------------------------------------------------------------------------------------------
// Resampling weights. mode 0: w = exp(lw - m) (NaN -> 0); mode 1 (m = +inf): w = [lw == +inf];
// mode 2 (no finite-or-+inf entry): w = 1.
constexpr int64_t kCdfChunk = 256;

struct WeightParams {
  int mode;
  float m;
};

DS_HD WeightParams weight_params_from_max(bool any_non_nan, float m) {
  if (!any_non_nan || m == -__builtin_huge_valf()) return WeightParams{2, 0.0f};
  if (m == __builtin_huge_valf()) return WeightParams{1, m};
  return WeightParams{0, m};
}

DS_HD double resample_weight(float lw, WeightParams p) {
  if (p.mode == 2) return 1.0;
  if (p.mode == 1) return lw == __builtin_huge_valf() ? 1.0 : 0.0;
  if (lw != lw) return 0.0;  // NaN
  return exp_nonpos(dsub(static_cast<double>(lw), static_cast<double>(p.m)));
}

// Multinomial draw j: u in (0, 1).
DS_HD double multinomial_u(uint64_t seed, uint64_t step, uint64_t j) {
  const uint64_t blk = j >> 1;
  const U32x4 r = philox4x32_10(static_cast<uint32_t>(blk), kTagMultinomial,
                                static_cast<uint32_t>(blk >> 32), static_cast<uint32_t>(step),
                                static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return (j & 1) ? uniform_double_open(r.v2, r.v3) : uniform_double_open(r.v0, r.v1);
}

DS_HD double systematic_u(uint64_t seed, uint64_t step) {
  const U32x4 r = philox4x32_10(0u, kTagSystematic, 0u, static_cast<uint32_t>(step),
                                static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return uniform_double_open(r.v0, r.v1);
}

DS_HD double multinomial_target(double u, double total) { return dmul(u, total); }
DS_HD double systematic_target(double u, int64_t j, int64_t n_out, double total) {
  return dmul(ddiv(dadd(static_cast<double>(j), u), static_cast<double>(n_out)), total);
}

// Smallest i with cdf[i] > t; if t >= total (= cdf[n-1]), smallest i with cdf[i] >= total.
DS_HD int64_t cdf_search(const double* cdf, int64_t n, double t) {
  const double total = cdf[n - 1];
  int64_t lo = 0, hi = n - 1;  // answer in [lo, hi]
  if (t < total) {
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (cdf[mid] > t) hi = mid; else lo = mid + 1;
    }
  } else {
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (cdf[mid] >= total) hi = mid; else lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace detail
}  // namespace kernels
}  // namespace ds
