// select.cpp — CPU: topk_segments, tournament_select, resample_{multinomial,systematic},
// effective_sample_size.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#endif
#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "cpu_common.h"
#include "ds_select.h"

namespace ds {
namespace kernels {

using namespace cpu;

namespace {

// The k largest composite keys of v[begin, end) (indices relative to the segment start),
// sorted descending, appended to `out`.
void topk_range(const float* v, int64_t begin, int64_t end, int64_t k,
                std::vector<uint64_t>& out) {
  const int64_t len = end - begin;
  if (k > len) k = len;
  if (k <= 0) return;
  std::vector<uint64_t> keys;
  if (k * 16 <= len) {
    // Threshold select: candidates that beat the current k-th best gather unsorted in a buffer
    // of 2k; when it fills, nth_element keeps the best k and raises the threshold. A later
    // element beats the k-th best only with a strictly higher value (ties keep the lower index),
    // so blocks of 16 whose values are all <= the threshold value (NaN included) are skipped
    // with one vectorised comparison.
    keys.reserve(static_cast<size_t>(2 * k));
    for (int64_t i = begin; i < begin + k; ++i) keys.push_back(detail::rank_key64(v[i], i));
    uint64_t worst = *std::min_element(keys.begin(), keys.end());
    auto value_of = [&](uint64_t key) {
      const float w = v[detail::rank_key64_index(key)];
      return w != w ? -__builtin_huge_valf() : w;
    };
    float wv = value_of(worst);
    auto consider = [&](int64_t i) {
      if (!(v[i] > wv)) return;  // same as key <= worst for a later index
      const uint64_t key = detail::rank_key64(v[i], i);
      keys.push_back(key);
      if (static_cast<int64_t>(keys.size()) == 2 * k) {
        std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<uint64_t>());
        keys.resize(static_cast<size_t>(k));
        worst = keys[k - 1];
        wv = value_of(worst);
      }
    };
    int64_t i = begin + k;
    for (; i + 16 <= end; i += 16) {
      int any = 0;
      for (int j = 0; j < 16; ++j) any |= v[i + j] > wv;
      if (any)
        for (int j = 0; j < 16; ++j) consider(i + j);
    }
    for (; i < end; ++i) consider(i);
    if (static_cast<int64_t>(keys.size()) > k) {
      std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<uint64_t>());
      keys.resize(static_cast<size_t>(k));
    }
    std::sort(keys.begin(), keys.end(), std::greater<uint64_t>());
  } else {
    keys.resize(static_cast<size_t>(len));
    for (int64_t i = begin; i < end; ++i) keys[i - begin] = detail::rank_key64(v[i], i);
    if (k < len)
      std::nth_element(keys.begin(), keys.begin() + k, keys.end(), std::greater<uint64_t>());
    std::sort(keys.begin(), keys.begin() + k, std::greater<uint64_t>());
    keys.resize(static_cast<size_t>(k));
  }
  out.insert(out.end(), keys.begin(), keys.end());
}

void write_topk(const float* v, const std::vector<uint64_t>& keys, int64_t k, float* ov,
                int64_t* oi) {
  for (int64_t j = 0; j < k; ++j) {
    const int64_t i = static_cast<int64_t>(detail::rank_key64_index(keys[j]));
    oi[j] = i;
    ov[j] = v[i];
  }
}

}  // namespace

void topk_segments_cpu(const float* values, int64_t S, int64_t L, int64_t k, float* out_values,
                       int64_t* out_indices) {
  static const char* fn = "topk_segments_cpu";
  validate::topk(fn, S, L, k);
  if (S == 0 || k == 0) return;
  require(values && out_values && out_indices, fn, "null pointer");
  const int nt = get_num_threads();
  constexpr int64_t kSplitMin = int64_t(1) << 16;
  if (nt > 1 && S < nt && L >= kSplitMin && k * 64 <= L) {
    // Few long segments: top-k of fixed chunks in parallel, then the top-k of the candidates.
    // The keys are unique, so the result does not depend on the chunking.
    const int64_t n_chunks = std::min<int64_t>(std::max<int64_t>(4 * nt / S, 2), L / (16 * k));
    const int64_t chunk = (L + n_chunks - 1) / n_chunks;
    for (int64_t s = 0; s < S; ++s) {
      const float* v = values + s * L;
      std::vector<std::vector<uint64_t>> part(static_cast<size_t>(n_chunks));
      parallel_for(n_chunks, chunk * 4, [&](int64_t c) {
        topk_range(v, c * chunk, std::min(L, (c + 1) * chunk), k, part[c]);
      });
      std::vector<uint64_t> cand;
      for (auto& p : part) cand.insert(cand.end(), p.begin(), p.end());
      std::nth_element(cand.begin(), cand.begin() + (k - 1), cand.end(),
                       std::greater<uint64_t>());
      std::sort(cand.begin(), cand.begin() + k, std::greater<uint64_t>());
      write_topk(v, cand, k, out_values + s * k, out_indices + s * k);
    }
    return;
  }
  parallel_for(S, L * 4, [&](int64_t s) {
    const float* v = values + s * L;
    std::vector<uint64_t> keys;
    topk_range(v, 0, L, k, keys);
    write_topk(v, keys, k, out_values + s * k, out_indices + s * k);
  });
}

void tournament_select_cpu(const float* fitness, int64_t P, int64_t n_winners,
                           int64_t tournament_size, uint64_t seed, int64_t step,
                           int64_t* out_idx) {
  static const char* fn = "tournament_select_cpu";
  validate::tournament(fn, P, n_winners, tournament_size);
  if (n_winners == 0) return;
  require(fitness && out_idx, fn, "null pointer");
  parallel_for(n_winners, tournament_size * 8, [&](int64_t t) {
    uint64_t best = 0;
    for (int64_t j = 0; j < tournament_size; ++j) {
      const uint32_t w = detail::tournament_word(seed, static_cast<uint64_t>(t),
                                                 static_cast<uint64_t>(step),
                                                 static_cast<uint64_t>(j));
      const uint64_t i = detail::uniform_index(w, static_cast<uint64_t>(P));
      const uint64_t key = detail::rank_key64(fitness[i], i);
      best = key > best ? key : best;
    }
    out_idx[t] = static_cast<int64_t>(detail::rank_key64_index(best));
  });
}

// ---------------------------------------------------------------------------------------------
namespace {

detail::WeightParams weight_params(const float* lw, int64_t n) {
  bool any = false;
  float m = -__builtin_huge_valf();
  for (int64_t i = 0; i < n; ++i) {
    const float x = lw[i];
    if (x == x) {
      any = true;
      m = x > m ? x : m;
    }
  }
  return detail::weight_params_from_max(any, m);
}

// cdf[i] in the fixed chunked order (see kernels.h); also returns Σw² in the same order if sq.
void build_cdf(const float* lw, int64_t n, detail::WeightParams p, double* cdf) {
  const int64_t ch = detail::kCdfChunk;
  const int64_t nc = (n + ch - 1) / ch;
  std::vector<double> tot(static_cast<size_t>(nc));
  parallel_for(nc, ch * 8, [&](int64_t c) {
    double local = 0.0;
    const int64_t e = std::min(n, (c + 1) * ch);
    for (int64_t i = c * ch; i < e; ++i) {
      local = local + detail::resample_weight(lw[i], p);
      cdf[i] = local;
    }
    tot[c] = local;
  });
  std::vector<double> off(static_cast<size_t>(nc));
  double acc = 0.0;
  for (int64_t c = 0; c < nc; ++c) {
    off[c] = acc;
    acc = acc + tot[c];
  }
  parallel_for(nc, ch, [&](int64_t c) {
    if (c == 0) return;
    const int64_t e = std::min(n, (c + 1) * ch);
    for (int64_t i = c * ch; i < e; ++i) cdf[i] = off[c] + cdf[i];
  });
}

void check_resample(const char* fn, const float* log_w, int64_t n, int64_t n_out,
                    const int64_t* out_idx) {
  validate::resample(fn, log_w, n, n_out, out_idx);
}

}  // namespace

void resample_multinomial_cpu(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                              int64_t step, int64_t* out_idx) {
  static const char* fn = "resample_multinomial_cpu";
  check_resample(fn, log_w, n, n_out, out_idx);
  std::vector<double> cdf(static_cast<size_t>(n));
  build_cdf(log_w, n, weight_params(log_w, n), cdf.data());
  const double total = cdf[n - 1];
  parallel_for(n_out, 64, [&](int64_t j) {
    const double u = detail::multinomial_u(seed, static_cast<uint64_t>(step),
                                           static_cast<uint64_t>(j));
    out_idx[j] = detail::cdf_search(cdf.data(), n, detail::multinomial_target(u, total));
  });
}

void resample_systematic_cpu(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                             int64_t step, int64_t* out_idx) {
  static const char* fn = "resample_systematic_cpu";
  check_resample(fn, log_w, n, n_out, out_idx);
  std::vector<double> cdf(static_cast<size_t>(n));
  build_cdf(log_w, n, weight_params(log_w, n), cdf.data());
  const double total = cdf[n - 1];
  const double u = detail::systematic_u(seed, static_cast<uint64_t>(step));
  parallel_for(n_out, 64, [&](int64_t j) {
    out_idx[j] =
        detail::cdf_search(cdf.data(), n, detail::systematic_target(u, j, n_out, total));
  });
}

double effective_sample_size_cpu(const float* log_w, int64_t n) {
  static const char* fn = "effective_sample_size_cpu";
  require(n >= 1, fn, "n must be >= 1");
  require(log_w != nullptr, fn, "null pointer");
  const detail::WeightParams p = weight_params(log_w, n);
  const int64_t ch = detail::kCdfChunk;
  const int64_t nc = (n + ch - 1) / ch;
  std::vector<double> tot(static_cast<size_t>(nc)), tot2(static_cast<size_t>(nc));
  parallel_for(nc, ch * 8, [&](int64_t c) {
    double s = 0.0, s2 = 0.0;
    const int64_t e = std::min(n, (c + 1) * ch);
    for (int64_t i = c * ch; i < e; ++i) {
      const double w = detail::resample_weight(log_w[i], p);
      s = s + w;
      s2 = s2 + w * w;
    }
    tot[c] = s;
    tot2[c] = s2;
  });
  double t = 0.0, t2 = 0.0;
  for (int64_t c = 0; c < nc; ++c) {
    t = t + tot[c];
    t2 = t2 + tot2[c];
  }
  return (t * t) / t2;
}

}  // namespace kernels
}  // namespace ds
