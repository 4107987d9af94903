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

// Calls f(row, e0, n) for every chunk [e0, e0 + n) of `chunk` elements of every row, in parallel.
template <class F>
inline void for_each_row_chunk(int64_t rows, int64_t dim, int64_t chunk, F&& f) {
  if (rows <= 0 || dim <= 0) return;
  const int64_t cpr = (dim + chunk - 1) / chunk;
  parallel_for(rows * cpr, std::min(dim, chunk), [&](int64_t t) {
    const int64_t r = t / cpr;
    const int64_t e0 = (t - r * cpr) * chunk;
    f(r, e0, std::min(chunk, dim - e0));
  });
}

// ---------------------------------------------------------------------------------------------
// Noise tiles: the noise of elements [e0, e0 + n) of one sample, e0 % 4 == 0, n <= kTile.
constexpr int64_t kTile = 512;
constexpr int64_t kTileBlocks = kTile / 4;

// Philox outputs of blocks block0 .. block0+nb-1 (nb <= kTileBlocks) of sample (seed, id, step),
// as four lane arrays, and the derived normals / uniforms of elements e0 .. e0+n-1 (e0 % 4 == 0,
// n <= kTile; buf gets 4*ceil(n/4) values). Defined in noise_tiles.cpp, where on x86-64 GCC
// they are compiled for AVX-512 / AVX2 / baseline and picked at run time (same results).
void philox_tile(uint32_t* r0, uint32_t* r1, uint32_t* r2, uint32_t* r3, uint64_t seed,
                 uint64_t id, uint64_t step, uint64_t block0, int64_t nb);
void normal_tile(float* buf, uint64_t seed, uint64_t id, uint64_t step, int64_t e0, int64_t n);
void uniform_tile(float* buf, uint64_t seed, uint64_t id, uint64_t step, int64_t e0, int64_t n);

// The noise-consuming element-wise ops share one formula, over a tile whose pointers start at
// its first element: o = z (x null), o = a·x + b·z (y null), or o = (a·x + c·y) + b·z — each
// product and sum rounded on its own, as on the GPU. On AVX-512 / AVX2 CPUs the noise never
// leaves the registers (noise_tiles.cpp); elsewhere it goes through normal_tile.
struct NoiseAffine {
  float* o;
  const float* x;
  const float* y;
  float a, c, b;
  // Where the next tile's o, x, y start (prefetched while this tile is computed; never read);
  // null: nothing to prefetch.
  const float* next_o = nullptr;
  const float* next_x = nullptr;
  const float* next_y = nullptr;
};
void affine_noise_tile(const NoiseAffine& f, uint64_t seed, uint64_t id, uint64_t step, int64_t e0,
                       int64_t n);

inline uint64_t row_id(const int64_t* ids, int64_t r) {
  return ids ? static_cast<uint64_t>(ids[r]) : static_cast<uint64_t>(r);
}

// Starts loading [p, p + n) (the next tile, while this one's noise is drawn) — the tile path's
// counterpart of the fused path's prefetches.
inline void prefetch_floats(const float* p, int64_t n, bool for_write) {
  for (int64_t i = 0; i < n; i += 16) {
    if (for_write)
      __builtin_prefetch(p + i, 1, 3);
    else
      __builtin_prefetch(p + i, 0, 3);
  }
}

// Calls f(row, e0, n, noise) for every tile of every row, in parallel. `noise` holds the
// normals of elements e0 .. e0+n-1 of that row's sample.
template <class F>
inline void for_each_noise_tile(int64_t rows, int64_t dim, uint64_t seed, const int64_t* ids,
                                int64_t step, F&& f) {
  for_each_row_chunk(rows, dim, kTile, [&](int64_t row, int64_t e0, int64_t n) {
    alignas(64) float z[kTile];
    normal_tile(z, seed, row_id(ids, row), static_cast<uint64_t>(step), e0, n);
    f(row, e0, n, static_cast<const float*>(z));
  });
}

inline NoiseAffine at_tile(NoiseAffine f, int64_t e0) {
  f.o += e0;
  if (f.x) f.x += e0;
  if (f.y) f.y += e0;
  return f;
}

// Runs the element-wise op row(r) (a NoiseAffine with pointers at the row's element 0) over
// every tile of every row, in parallel, each tile told where the next one (the one this thread
// most likely takes next) starts. Prefetching it while this tile's noise is drawn lifts op 1 from
// 11.4 to 16.0 GB/s at 2^26 elements (bench/RESULTS.md).
template <class Row>
inline void for_each_affine_noise_tile(int64_t rows, int64_t dim, uint64_t seed, const int64_t* ids,
                                       int64_t step, Row&& row) {
  for_each_row_chunk(rows, dim, kTile, [&](int64_t r, int64_t e0, int64_t n) {
    NoiseAffine f = at_tile(row(r), e0);
    const bool row_ends = e0 + kTile >= dim;
    if (!row_ends || r + 1 < rows) {
      const NoiseAffine next = row_ends ? at_tile(row(r + 1), 0) : at_tile(row(r), e0 + kTile);
      f.next_o = next.o;
      f.next_x = next.x;
      f.next_y = next.y;
    }
    affine_noise_tile(f, seed, row_id(ids, r), static_cast<uint64_t>(step), e0, n);
  });
}

inline void check_rows_dim(const char* fn, int64_t rows, int64_t dim) {
  validate::rows_dim(fn, rows, dim);
}

}  // namespace cpu
}  // namespace kernels
}  // namespace ds
