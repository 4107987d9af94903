// cpu_common.h — internal helpers of the CPU kernels (not part of the public API).
//
// Every .cpp of ds_kernels starts with `#pragma GCC optimize("fp-contract=off")` BEFORE its
// includes, so GCC never fuses a*b+c into an FMA (the CUDA side uses _rn intrinsics); this keeps
// CPU and CUDA float results bitwise identical. Build flags should add -ffp-contract=off too.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "ds_math.h"
#include "ds_validate.h"
#include "kernels.h"

namespace ds {
namespace kernels {
namespace cpu {

using validate::fail;
using validate::require;

// Below this many elements of work a kernel runs on the calling thread.
constexpr int64_t kParallelMinWork = 1 << 15;

// Runs f(i) for i in [0, n). Static schedule; results never depend on the thread count because
// every i is computed independently.
template <class F>
inline void parallel_for(int64_t n, int64_t work_per_item, F&& f) {
  const int nt = get_num_threads();
  if (nt <= 1 || n <= 1 || n * std::max<int64_t>(work_per_item, 1) < kParallelMinWork) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// ---------------------------------------------------------------------------------------------
// Noise tiles: the noise of elements [e0, e0 + n) of one sample, e0 % 4 == 0, n <= kTile.
constexpr int64_t kTile = 512;
constexpr int64_t kTileBlocks = kTile / 4;

inline void philox_tile(uint32_t* __restrict r0, uint32_t* __restrict r1, uint32_t* __restrict r2,
                        uint32_t* __restrict r3, uint64_t seed, uint64_t id, uint64_t step,
                        uint64_t block0, int64_t nb) {
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const uint32_t c2 = static_cast<uint32_t>(id), c3 = static_cast<uint32_t>(step);
  const uint32_t hi = static_cast<uint32_t>(block0 >> 32);
  const uint32_t lo0 = static_cast<uint32_t>(block0);
  if (static_cast<uint64_t>(lo0) + static_cast<uint64_t>(nb) <= (1ull << 32)) {
    // Common case: the low counter word does not wrap inside the tile (vectorisable).
    for (int64_t i = 0; i < nb; ++i) {
      const detail::U32x4 r =
          detail::philox4x32_10(lo0 + static_cast<uint32_t>(i), hi, c2, c3, k0, k1);
      r0[i] = r.v0;
      r1[i] = r.v1;
      r2[i] = r.v2;
      r3[i] = r.v3;
    }
  } else {
    for (int64_t i = 0; i < nb; ++i) {
      const detail::U32x4 r = detail::noise_block(seed, id, step, block0 + i);
      r0[i] = r.v0;
      r1[i] = r.v1;
      r2[i] = r.v2;
      r3[i] = r.v3;
    }
  }
}

// buf[0 .. 4*ceil(n/4)) = normals of elements e0.. of sample (seed, id, step).
inline void normal_tile(float* __restrict buf, uint64_t seed, uint64_t id, uint64_t step,
                        int64_t e0, int64_t n) {
  const int64_t nb = (n + 3) / 4;
  alignas(64) uint32_t r0[kTileBlocks], r1[kTileBlocks], r2[kTileBlocks], r3[kTileBlocks];
  philox_tile(r0, r1, r2, r3, seed, id, step, static_cast<uint64_t>(e0) / 4, nb);
  alignas(64) float z0[kTileBlocks], z1[kTileBlocks], z2[kTileBlocks], z3[kTileBlocks];
  for (int64_t i = 0; i < nb; ++i) {
    detail::box_muller(r0[i], r1[i], z0[i], z1[i]);
    detail::box_muller(r2[i], r3[i], z2[i], z3[i]);
  }
  for (int64_t i = 0; i < nb; ++i) {
    buf[4 * i + 0] = z0[i];
    buf[4 * i + 1] = z1[i];
    buf[4 * i + 2] = z2[i];
    buf[4 * i + 3] = z3[i];
  }
}

inline void uniform_tile(float* __restrict buf, uint64_t seed, uint64_t id, uint64_t step,
                         int64_t e0, int64_t n) {
  const int64_t nb = (n + 3) / 4;
  alignas(64) uint32_t r0[kTileBlocks], r1[kTileBlocks], r2[kTileBlocks], r3[kTileBlocks];
  philox_tile(r0, r1, r2, r3, seed, id, step, static_cast<uint64_t>(e0) / 4, nb);
  for (int64_t i = 0; i < nb; ++i) {
    buf[4 * i + 0] = detail::uniform_open0(r0[i]);
    buf[4 * i + 1] = detail::uniform_open0(r1[i]);
    buf[4 * i + 2] = detail::uniform_open0(r2[i]);
    buf[4 * i + 3] = detail::uniform_open0(r3[i]);
  }
}

inline uint64_t row_id(const int64_t* ids, int64_t r) {
  return ids ? static_cast<uint64_t>(ids[r]) : static_cast<uint64_t>(r);
}

// Calls f(row, e0, n, noise) for every tile of every row, in parallel. `noise` holds the
// normals of elements e0 .. e0+n-1 of that row's sample.
template <class F>
inline void for_each_noise_tile(int64_t rows, int64_t dim, uint64_t seed, const int64_t* ids,
                                int64_t step, F&& f) {
  if (rows <= 0 || dim <= 0) return;
  const int64_t tpr = (dim + kTile - 1) / kTile;
  parallel_for(rows * tpr, std::min(dim, kTile), [&](int64_t t) {
    const int64_t row = t / tpr;
    const int64_t e0 = (t - row * tpr) * kTile;
    const int64_t n = std::min(kTile, dim - e0);
    alignas(64) float z[kTile];
    normal_tile(z, seed, row_id(ids, row), static_cast<uint64_t>(step), e0, n);
    f(row, e0, n, static_cast<const float*>(z));
  });
}

inline void check_rows_dim(const char* fn, int64_t rows, int64_t dim) {
  validate::rows_dim(fn, rows, dim);
}

}  // namespace cpu
}  // namespace kernels
}  // namespace ds
