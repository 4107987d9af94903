// avx2_noise.h — AVX2 + FMA building blocks of the CPU noise (included by noise_tiles.cpp only).
//
// avx512_noise.h in 256-bit registers: the same integer and IEEE operations as ds_math.h's
// philox4x32_10 / box_muller, so every result is bitwise the scalar formula's. AVX2 has no mask
// registers, 3-way xor or two-source permutes, so masks are vectors, xors come in pairs and the
// packing takes in-lane shuffles. Only functions with the avx2,fma target may call these.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ds_math.h"
#include "noise_poly.h"

#define DS_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline
#define DS_AVX2_INT __attribute__((target("avx2"), always_inline)) static inline  // no FMA needed

namespace ds {
namespace kernels {
namespace cpu {
namespace avx2 {

// Ten Philox rounds on V vectors of 4 blocks, each 32-bit word in the low half of a 64-bit lane
// (see avx512_noise.h); the high half of the product comes down by a 64-bit shift.
template <int V>
DS_AVX2_INT void philox_rounds(__m256i* a, __m256i* b, __m256i* c, __m256i* d, uint32_t key0,
                           uint32_t key1) {
  const __m256i M0 = _mm256_set1_epi64x(detail::kPhiloxM0), M1 = _mm256_set1_epi64x(detail::kPhiloxM1);
  for (int r = 0; r < 10; ++r) {
    const __m256i K0 = _mm256_set1_epi64x(static_cast<uint32_t>(key0 + static_cast<uint32_t>(r) * detail::kPhiloxW0));
    const __m256i K1 = _mm256_set1_epi64x(static_cast<uint32_t>(key1 + static_cast<uint32_t>(r) * detail::kPhiloxW1));
    for (int v = 0; v < V; ++v) {
      const __m256i p0 = _mm256_mul_epu32(a[v], M0);
      const __m256i p1 = _mm256_mul_epu32(c[v], M1);
      a[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), b[v]), K0);
      c[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), d[v]), K1);
      b[v] = p1;
      d[v] = p0;
    }
  }
}

// detail::log_pos(u) for u = k·2^-24 on 8 lanes, from the bits of float(k) (k >= 1).
DS_AVX2 __m256 log_k24(__m256i k) {
  const __m256i bits = _mm256_castps_si256(_mm256_cvtepi32_ps(k));
  const __m256i mant = _mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF));
  const __m256i small = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x003504F3), mant);  // all ones
  // e = exponent - 126 - 24 - small; small is -1 where set.
  const __m256i e = _mm256_add_epi32(
      _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126 + 24)), small);
  const __m256 m = _mm256_castsi256_ps(_mm256_or_si256(mant, _mm256_set1_epi32(0x3F000000)));
  // m + m where small, m + 0 elsewhere (both exact), then t = m' - 1.
  const __m256 t = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(_mm256_castsi256_ps(small), m)),
                                 _mm256_set1_ps(1.0f));
  const __m256 z = _mm256_mul_ps(t, t);
  __m256 y = _mm256_set1_ps(kLogPoly[0]);
  for (int i = 1; i < 9; ++i) y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(kLogPoly[i]));
  y = _mm256_mul_ps(_mm256_mul_ps(y, t), z);
  const __m256 fe = _mm256_cvtepi32_ps(e);
  y = _mm256_fmadd_ps(_mm256_set1_ps(-2.12194440e-4f), fe, y);
  y = _mm256_fmadd_ps(_mm256_set1_ps(-0.5f), z, y);
  return _mm256_fmadd_ps(_mm256_set1_ps(0.693359375f), fe, _mm256_add_ps(t, y));
}

// detail::box_muller on 8 lanes: radius words a, angle words b -> zc = ρ·cos, zs = ρ·sin, with
// the angle reduced straight from b as in avx512_noise.h.
DS_AVX2 void box_muller(__m256i a, __m256i b, __m256& zc, __m256& zs) {
  const __m256i k1 = _mm256_add_epi32(_mm256_srli_epi32(a, 8), _mm256_set1_epi32(1));
  const __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log_k24(k1)));
  const __m256i T = _mm256_add_epi32(b, _mm256_set1_epi32(1 << 29));
  const __m256i fi = _mm256_srai_epi32(_mm256_slli_epi32(b, 2), 10);
  const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(fi), _mm256_set1_ps(5.9604644775390625e-8f));
  const __m256 f2 = _mm256_mul_ps(f, f);
  __m256 ps = _mm256_set1_ps(kSinPoly[0]);
  for (int i = 1; i < 5; ++i) ps = _mm256_fmadd_ps(ps, f2, _mm256_set1_ps(kSinPoly[i]));
  const __m256 sv = _mm256_mul_ps(ps, f);
  __m256 cv = _mm256_set1_ps(kCosPoly[0]);
  for (int i = 1; i < 6; ++i) cv = _mm256_fmadd_ps(cv, f2, _mm256_set1_ps(kCosPoly[i]));
  // Swap on odd q (bit 30 of T); sign of s: bit 31 of T; sign of c: bit 31 of T + 2^30.
  const __m256i bit30 = _mm256_set1_epi32(1 << 30);
  const __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(T, bit30), bit30));
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  const __m256 s_sign = _mm256_castsi256_ps(_mm256_and_si256(T, sign));
  const __m256 c_sign = _mm256_castsi256_ps(_mm256_and_si256(_mm256_add_epi32(T, bit30), sign));
  const __m256 s = _mm256_xor_ps(_mm256_blendv_ps(sv, cv, odd), s_sign);
  const __m256 c = _mm256_xor_ps(_mm256_blendv_ps(cv, sv, odd), c_sign);
  zc = _mm256_mul_ps(r, c);
  zs = _mm256_mul_ps(r, s);
}

// The 16 normals of 4 Philox blocks (words a..d, one block per 64-bit lane) in element order:
// lo = elements 0..7 (blocks 0, 1), hi = elements 8..15 (blocks 2, 3). The in-lane pack puts, in
// each 128-bit half h, the pairs of blocks 2h, 2h+1, 2h (second pair), 2h+1 (second pair).
DS_AVX2 void normals16(__m256i a, __m256i b, __m256i c, __m256i d, __m256& lo, __m256& hi) {
  __m256 zc, zs;
  box_muller(_mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(c), 0x88)),
             _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(d), 0x88)),
             zc, zs);
  const __m256 p = _mm256_unpacklo_ps(zc, zs), q = _mm256_unpackhi_ps(zc, zs);
  const __m256 even = _mm256_shuffle_ps(p, q, 0x44), odd = _mm256_shuffle_ps(p, q, 0xEE);  // blocks 2h, 2h+1
  lo = _mm256_permute2f128_ps(even, odd, 0x20);
  hi = _mm256_permute2f128_ps(even, odd, 0x31);
}

}  // namespace avx2
}  // namespace cpu
}  // namespace kernels
}  // namespace ds
