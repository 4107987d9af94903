// select.cu — CUDA: topk_segments, tournament_select, resample_{multinomial,systematic},
// effective_sample_size. Integer results are identical to the CPU versions (same keys, same
// fixed-order double sums, same exp), see kernels.h.
#include <cub/cub.cuh>

#include "cuda_common.cuh"
#include "ds_select.h"

namespace ds {
namespace kernels {

using namespace cuda;

namespace {

// --- top-k --------------------------------------------------------------------------------------
constexpr int kSmemSortMax = 4096;  // segments up to this length are sorted in shared memory
constexpr int kSortThreads = 512;

// One block per segment: composite keys in shared memory, bitonic sort (descending), write top k.
__global__ void topk_smem_kernel(const float* values, int64_t S, int64_t L, int64_t k,
                                 float* out_values, int64_t* out_indices) {
  __shared__ unsigned long long keys[kSmemSortMax];
  int p2 = 1;
  while (p2 < L) p2 <<= 1;
  for (int64_t s = blockIdx.x; s < S; s += gridDim.x) {
    const float* v = values + s * L;
    for (int i = threadIdx.x; i < p2; i += blockDim.x)
      keys[i] = i < L ? detail::rank_key64(v[i], static_cast<uint64_t>(i)) : 0ull;  // 0 < any key
    __syncthreads();
    for (int size = 2; size <= p2; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int i = threadIdx.x; i < p2; i += blockDim.x) {
          const int j = i ^ stride;
          if (j > i) {
            const unsigned long long a = keys[i], b = keys[j];
            const bool desc = (i & size) == 0;
            if (desc ? (a < b) : (a > b)) {
              keys[i] = b;
              keys[j] = a;
            }
          }
        }
        __syncthreads();
      }
    }
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const int64_t i = static_cast<int64_t>(detail::rank_key64_index(keys[j]));
      out_indices[s * k + j] = i;
      out_values[s * k + j] = v[i];
    }
    __syncthreads();
  }
}

// Large segments: keys with `bits` low bits for (L-1-i), value rank above; CUB radix sort.
__global__ void topk_make_keys_kernel(const float* values, int64_t S, int64_t L, int bits,
                                      unsigned long long* keys) {
  const int64_t total = S * L;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = t % L;
    keys[t] = (static_cast<unsigned long long>(detail::float_rank_key(values[t])) << bits) |
              static_cast<unsigned long long>(L - 1 - i);
  }
}

__global__ void topk_extract_kernel(const unsigned long long* sorted, const float* values,
                                    int64_t S, int64_t L, int64_t k, int bits, float* out_values,
                                    int64_t* out_indices) {
  const int64_t total = S * k;
  const unsigned long long mask = (1ull << bits) - 1ull;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = t / k, j = t - s * k;
    const int64_t i = L - 1 - static_cast<int64_t>(sorted[s * L + j] & mask);
    out_indices[t] = i;
    out_values[t] = values[s * L + i];
  }
}

__global__ void segment_offsets_kernel(int64_t n_seg, int64_t L, int* offsets) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t <= n_seg;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x)
    offsets[t] = static_cast<int>(t * L);
}

// --- tournament -----------------------------------------------------------------------------------
__global__ void tournament_kernel(const float* fitness, int64_t P, int64_t n_winners, int64_t ts,
                                  uint64_t seed, uint64_t step, int64_t* out_idx) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < n_winners;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t best = 0;
    for (int64_t j = 0; j < ts; ++j) {
      const uint32_t w =
          detail::tournament_word(seed, static_cast<uint64_t>(t), step, static_cast<uint64_t>(j));
      const uint64_t i = detail::uniform_index(w, static_cast<uint64_t>(P));
      const uint64_t key = detail::rank_key64(fitness[i], i);
      best = key > best ? key : best;
    }
    out_idx[t] = static_cast<int64_t>(detail::rank_key64_index(best));
  }
}

// --- resampling -----------------------------------------------------------------------------------
constexpr int kMaxThreads = 1024;

struct ResampleState {
  detail::WeightParams wp;
  double total;   // cdf[n-1]
  double total2;  // Σ w² (fixed order)
  double ess;
};

// Single block: max over non-NaN entries (order-independent, exact).
__global__ void weight_max_kernel(const float* lw, int64_t n, ResampleState* st) {
  __shared__ float sm[kMaxThreads];
  __shared__ int sany[kMaxThreads];
  float m = -__builtin_huge_valf();
  int any = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float x = lw[i];
    if (x == x) {
      any = 1;
      m = x > m ? x : m;
    }
  }
  sm[threadIdx.x] = m;
  sany[threadIdx.x] = any;
  __syncthreads();
  for (int s = blockDim.x >> 1; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) {
      const float o = sm[threadIdx.x + s];
      sm[threadIdx.x] = o > sm[threadIdx.x] ? o : sm[threadIdx.x];
      sany[threadIdx.x] |= sany[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) st->wp = detail::weight_params_from_max(sany[0] != 0, sm[0]);
}

// One thread per chunk: in-chunk running sums (cdf without the chunk offset), chunk totals.
__global__ void weight_chunks_kernel(const float* lw, int64_t n, const ResampleState* st,
                                     double* cdf, double* tot, double* tot2) {
  const int64_t ch = detail::kCdfChunk;
  const int64_t nc = (n + ch - 1) / ch;
  const detail::WeightParams wp = st->wp;
  for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < nc;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double s = 0.0, s2 = 0.0;
    const int64_t e = (c + 1) * ch < n ? (c + 1) * ch : n;
    for (int64_t i = c * ch; i < e; ++i) {
      const double w = detail::resample_weight(lw[i], wp);
      s = detail::dadd(s, w);
      if (cdf) cdf[i] = s;
      if (tot2) s2 = detail::dadd(s2, detail::dmul(w, w));
    }
    tot[c] = s;
    if (tot2) tot2[c] = s2;
  }
}

// Single thread: exclusive chunk offsets (in place over tot), totals, ESS.
__global__ void chunk_offsets_kernel(int64_t nc, double* tot, const double* tot2,
                                     ResampleState* st) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double acc = 0.0, acc2 = 0.0;
  for (int64_t c = 0; c < nc; ++c) {
    const double t = tot[c];
    tot[c] = acc;
    acc = detail::dadd(acc, t);
    if (tot2) acc2 = detail::dadd(acc2, tot2[c]);
  }
  st->total = acc;
  st->total2 = acc2;
  st->ess = tot2 ? detail::ddiv(detail::dmul(acc, acc), acc2) : 0.0;
}

__global__ void add_offsets_kernel(int64_t n, const double* off, double* cdf) {
  const int64_t ch = detail::kCdfChunk;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i / ch;
    if (c > 0) cdf[i] = detail::dadd(off[c], cdf[i]);
  }
}

template <bool Systematic>
__global__ void draw_kernel(const double* cdf, int64_t n, int64_t n_out, uint64_t seed,
                            uint64_t step, int64_t* out_idx) {
  const double total = cdf[n - 1];
  const double us = Systematic ? detail::systematic_u(seed, step) : 0.0;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n_out;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double t =
        Systematic ? detail::systematic_target(us, j, n_out, total)
                   : detail::multinomial_target(
                         detail::multinomial_u(seed, step, static_cast<uint64_t>(j)), total);
    out_idx[j] = detail::cdf_search(cdf, n, t);
  }
}

template <bool Systematic>
void resample_impl(const char* fn, const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                   int64_t step, int64_t* out_idx, void* stream) {
  validate::resample(fn, log_w, n, n_out, out_idx);
  cudaStream_t st = as_stream(stream);
  const int64_t nc = (n + detail::kCdfChunk - 1) / detail::kCdfChunk;
  const size_t b_state = 64;
  const size_t b_cdf = static_cast<size_t>(n) * sizeof(double);
  DeviceTemp tmp(b_state + b_cdf + static_cast<size_t>(nc) * sizeof(double), st, fn);
  ResampleState* state = tmp.as<ResampleState>();
  double* cdf = tmp.as<double>(b_state);
  double* tot = tmp.as<double>(b_state + b_cdf);
  weight_max_kernel<<<1, kMaxThreads, 0, st>>>(log_w, n, state);
  check_launch(fn);
  weight_chunks_kernel<<<grid_for(nc, 128), 128, 0, st>>>(log_w, n, state, cdf, tot, nullptr);
  check_launch(fn);
  chunk_offsets_kernel<<<1, 1, 0, st>>>(nc, tot, nullptr, state);
  check_launch(fn);
  add_offsets_kernel<<<grid_for(n), kThreads, 0, st>>>(n, tot, cdf);
  check_launch(fn);
  draw_kernel<Systematic><<<grid_for(n_out), kThreads, 0, st>>>(
      cdf, n, n_out, seed, static_cast<uint64_t>(step), out_idx);
  check_launch(fn);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
void topk_segments_cuda(const float* values, int64_t S, int64_t L, int64_t k, float* out_values,
                        int64_t* out_indices, void* stream) {
  static const char* fn = "topk_segments_cuda";
  validate::topk(fn, S, L, k);
  if (S == 0 || k == 0) return;
  validate::require(values && out_values && out_indices, fn, "null pointer");
  cudaStream_t st = as_stream(stream);
  if (L <= kSmemSortMax) {
    const unsigned g = static_cast<unsigned>(S < 65535 ? S : 65535);
    topk_smem_kernel<<<g, kSortThreads, 0, st>>>(values, S, L, k, out_values, out_indices);
    check_launch(fn);
    return;
  }
  int bits = 1;
  while ((int64_t(1) << bits) < L) ++bits;  // L - 1 - i < 2^bits
  const int end_bit = 32 + bits;
  const int64_t total = S * L;
  DeviceTemp keys(static_cast<size_t>(total) * 2 * sizeof(unsigned long long), st, fn);
  unsigned long long* kin = keys.as<unsigned long long>();
  unsigned long long* kout = kin + total;
  topk_make_keys_kernel<<<grid_for(total), kThreads, 0, st>>>(values, S, L, bits, kin);
  check_launch(fn);
  if (S <= 16) {
    // Few long segments: one device-wide radix sort per segment.
    size_t temp_bytes = 0;
    check(cub::DeviceRadixSort::SortKeysDescending(nullptr, temp_bytes, kin, kout, L, 0, end_bit,
                                                    st),
          fn, "cub temp size");
    DeviceTemp temp(temp_bytes, st, fn);
    for (int64_t s = 0; s < S; ++s) {
      size_t tb = temp_bytes;
      check(cub::DeviceRadixSort::SortKeysDescending(temp.as<void>(), tb, kin + s * L,
                                                      kout + s * L, L, 0, end_bit, st),
            fn, "cub radix sort");
    }
  } else {
    // Many segments: segmented sort in batches with < 2^31 items each.
    const int64_t per_batch = ((int64_t(1) << 31) - 1) / L;
    const int64_t batch = per_batch < S ? per_batch : S;
    DeviceTemp offs(static_cast<size_t>(batch + 1) * sizeof(int), st, fn);
    int* off = offs.as<int>();
    segment_offsets_kernel<<<grid_for(batch + 1), kThreads, 0, st>>>(batch, L, off);
    check_launch(fn);
    size_t temp_bytes = 0;
    check(cub::DeviceSegmentedRadixSort::SortKeysDescending(
              nullptr, temp_bytes, kin, kout, static_cast<int>(batch * L),
              static_cast<int>(batch), off, off + 1, 0, end_bit, st),
          fn, "cub temp size");
    DeviceTemp temp(temp_bytes, st, fn);
    for (int64_t s0 = 0; s0 < S; s0 += batch) {
      const int64_t nb = S - s0 < batch ? S - s0 : batch;
      size_t tb = temp_bytes;
      check(cub::DeviceSegmentedRadixSort::SortKeysDescending(
                temp.as<void>(), tb, kin + s0 * L, kout + s0 * L, static_cast<int>(nb * L),
                static_cast<int>(nb), off, off + 1, 0, end_bit, st),
            fn, "cub segmented radix sort");
    }
  }
  topk_extract_kernel<<<grid_for(S * k), kThreads, 0, st>>>(kout, values, S, L, k, bits,
                                                            out_values, out_indices);
  check_launch(fn);
}

void tournament_select_cuda(const float* fitness, int64_t P, int64_t n_winners,
                            int64_t tournament_size, uint64_t seed, int64_t step, int64_t* out_idx,
                            void* stream) {
  static const char* fn = "tournament_select_cuda";
  validate::tournament(fn, P, n_winners, tournament_size);
  if (n_winners == 0) return;
  validate::require(fitness && out_idx, fn, "null pointer");
  tournament_kernel<<<grid_for(n_winners, 128), 128, 0, as_stream(stream)>>>(
      fitness, P, n_winners, tournament_size, seed, static_cast<uint64_t>(step), out_idx);
  check_launch(fn);
}

void resample_multinomial_cuda(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                               int64_t step, int64_t* out_idx, void* stream) {
  resample_impl<false>("resample_multinomial_cuda", log_w, n, n_out, seed, step, out_idx, stream);
}

void resample_systematic_cuda(const float* log_w, int64_t n, int64_t n_out, uint64_t seed,
                              int64_t step, int64_t* out_idx, void* stream) {
  resample_impl<true>("resample_systematic_cuda", log_w, n, n_out, seed, step, out_idx, stream);
}

double effective_sample_size_cuda(const float* log_w, int64_t n, void* stream) {
  static const char* fn = "effective_sample_size_cuda";
  validate::require(n >= 1, fn, "n must be >= 1");
  validate::require(log_w != nullptr, fn, "null pointer");
  cudaStream_t st = as_stream(stream);
  const int64_t nc = (n + detail::kCdfChunk - 1) / detail::kCdfChunk;
  const size_t b_state = 64;
  double ess = 0.0;
  {
    DeviceTemp tmp(b_state + 2 * static_cast<size_t>(nc) * sizeof(double), st, fn);
    ResampleState* state = tmp.as<ResampleState>();
    double* tot = tmp.as<double>(b_state);
    double* tot2 = tot + nc;
    weight_max_kernel<<<1, kMaxThreads, 0, st>>>(log_w, n, state);
    check_launch(fn);
    weight_chunks_kernel<<<grid_for(nc, 128), 128, 0, st>>>(log_w, n, state, nullptr, tot, tot2);
    check_launch(fn);
    chunk_offsets_kernel<<<1, 1, 0, st>>>(nc, tot, tot2, state);
    check_launch(fn);
    check(cudaMemcpyAsync(&ess, &state->ess, sizeof(double), cudaMemcpyDeviceToHost, st), fn,
          "cudaMemcpyAsync");
  }
  check(cudaStreamSynchronize(st), fn, "cudaStreamSynchronize");
  return ess;
}

}  // namespace kernels
}  // namespace ds
