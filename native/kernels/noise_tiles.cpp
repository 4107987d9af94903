// noise_tiles.cpp — CPU noise generation in tiles (the hot loops of every random op).
//
// The loops are written to auto-vectorise (structure of arrays, branch-free math from ds_math.h).
// On x86-64 with GCC they are cloned for AVX-512 / AVX2 / the baseline ISA and dispatched at run
// time (target_clones); every clone computes the same IEEE operations without contraction, so
// the results are identical whichever clone runs.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#endif
#include "cpu_common.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(DS_NO_TARGET_CLONES)
#define DS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DS_CLONES
#endif

namespace ds {
namespace kernels {
namespace cpu {

namespace {

inline void philox_tile_impl(uint32_t* __restrict r0, uint32_t* __restrict r1,
                             uint32_t* __restrict r2, uint32_t* __restrict r3, uint64_t seed,
                             uint64_t id, uint64_t step, uint64_t block0, int64_t nb) {
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

}  // namespace

DS_CLONES void philox_tile(uint32_t* r0, uint32_t* r1, uint32_t* r2, uint32_t* r3, uint64_t seed,
                           uint64_t id, uint64_t step, uint64_t block0, int64_t nb) {
  philox_tile_impl(r0, r1, r2, r3, seed, id, step, block0, nb);
}

DS_CLONES void normal_tile(float* __restrict buf, uint64_t seed, uint64_t id, uint64_t step,
                           int64_t e0, int64_t n) {
  const int64_t nb = (n + 3) / 4;
  alignas(64) uint32_t r0[kTileBlocks], r1[kTileBlocks], r2[kTileBlocks], r3[kTileBlocks];
  philox_tile_impl(r0, r1, r2, r3, seed, id, step, static_cast<uint64_t>(e0) / 4, nb);
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

DS_CLONES void uniform_tile(float* __restrict buf, uint64_t seed, uint64_t id, uint64_t step,
                            int64_t e0, int64_t n) {
  const int64_t nb = (n + 3) / 4;
  alignas(64) uint32_t r0[kTileBlocks], r1[kTileBlocks], r2[kTileBlocks], r3[kTileBlocks];
  philox_tile_impl(r0, r1, r2, r3, seed, id, step, static_cast<uint64_t>(e0) / 4, nb);
  for (int64_t i = 0; i < nb; ++i) {
    buf[4 * i + 0] = detail::uniform_open0(r0[i]);
    buf[4 * i + 1] = detail::uniform_open0(r1[i]);
    buf[4 * i + 2] = detail::uniform_open0(r2[i]);
    buf[4 * i + 3] = detail::uniform_open0(r3[i]);
  }
}

}  // namespace cpu
}  // namespace kernels
}  // namespace ds
